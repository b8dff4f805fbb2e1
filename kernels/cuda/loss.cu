// CUDA softmax, softmax cross-entropy and binary cross-entropy (with and without logits), forward and
// backward. Sums are deterministic (kernels/cuda/launch.cuh); per-element math from kernels/nn_math.h.
#include <cfloat>
#include <cmath>
#include <cstdint>

#include "kernels/backend.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/nn_math.h"
#include "kernels/type_switch.h"

namespace livernet::kernels::cuda {

namespace {
// ---- softmax and cross-entropy -----------------------------------------------------------------------------

template <int G>
__device__ __forceinline__ float group_max(float v) { return warp_reduce<G>(v, MaxOp{}); }
template <int G>
__device__ __forceinline__ float group_sum(float v) { return warp_reduce<G>(v, SumOp{}); }

// Row softmax of z [N, K] into probs (f32), G lanes per row (G = 1, 8 or 32: one thread per row for tiny
// K, a warp for wide rows). A warp's groups iterate together (rows past N idle but still join the
// shuffles). With LOSS, also the per-row loss l_i and weight w_{y_i} for the deterministic final sum.
template <int G, typename T, typename L, bool LOSS>
__global__ void softmax_rows_kernel(const T* __restrict__ z, i64 n_rows, i64 k_total, const L* __restrict__ labels,
                                    const float* __restrict__ weights, float eps, float* __restrict__ probs,
                                    float* __restrict__ row_loss, float* __restrict__ row_weight) {
  const i64 tid = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x;
  const i64 group = tid / G, groups = static_cast<i64>(gridDim.x) * blockDim.x / G;
  const i64 warp_group0 = (tid / 32) * (32 / G);
  const int lane = static_cast<int>(threadIdx.x % G);
  for (i64 base = warp_group0; base < n_rows; base += groups) {
    const i64 row = base + (group - warp_group0);
    const i64 kend = row < n_rows ? k_total : 0;
    const T* zr = z + row * k_total;
    float mx = -INFINITY;
    for (i64 k = lane; k < kend; k += G) mx = fmaxf(mx, to_float(zr[k]));
    mx = group_max<G>(mx);
    float s = 0.f;
    for (i64 k = lane; k < kend; k += G) s += expf(to_float(zr[k]) - mx);
    s = group_sum<G>(s);
    const float logsum = logf(s);
    float smooth = 0.f;
    float* pr = probs + row * k_total;
    for (i64 k = lane; k < kend; k += G) {
      const float e = to_float(zr[k]) - mx;
      pr[k] = expf(e) / s;
      if (LOSS && eps != 0.f) smooth += ldg_or(weights, k, 1.f) * -(e - logsum);
    }
    if constexpr (LOSS) {
      smooth = group_sum<G>(smooth);
      if (row < n_rows && lane == 0) {
        const i64 y = static_cast<i64>(labels[row]);
        if (y < 0 || y >= k_total) {  // not checked on the host (kernels/{conv,norm,pool,copy,linear,loss}.cpp): poison the loss instead
          row_loss[row] = NAN;
          row_weight[row] = NAN;
        } else {
          const float wy = ldg_or(weights, y, 1.f);
          const float logp_y = to_float(zr[y]) - mx - logsum;
          row_loss[row] = (1.f - eps) * wy * -logp_y + (eps / static_cast<float>(k_total)) * smooth;
          row_weight[row] = wy;
        }
      }
    }
  }
}

template <typename T, typename L, bool LOSS>
void launch_softmax_rows(const LaunchContext& ctx, const T* z, i64 n_rows, i64 k_total, const L* labels,
                         const float* weights, float eps, float* probs, float* row_loss, float* row_weight) {
  if (n_rows <= 0) return;
  if (k_total <= 4) {
    softmax_rows_kernel<1, T, L, LOSS><<<grid_for(n_rows, ctx.device), kBlock, 0, ctx.stream>>>(
        z, n_rows, k_total, labels, weights, eps, probs, row_loss, row_weight);
  } else if (k_total <= 64) {
    softmax_rows_kernel<8, T, L, LOSS><<<grid_for(n_rows * 8, ctx.device), kBlock, 0, ctx.stream>>>(
        z, n_rows, k_total, labels, weights, eps, probs, row_loss, row_weight);
  } else {
    softmax_rows_kernel<32, T, L, LOSS><<<grid_for(n_rows * 32, ctx.device), kBlock, 0, ctx.stream>>>(
        z, n_rows, k_total, labels, weights, eps, probs, row_loss, row_weight);
  }
  LN_CUDA_CHECK_LAUNCH();
}

// Sum terms: (row loss, row weight) for the cross-entropy; one f32 value for sum(class_weights).
struct PairRowsTerm {
  const float *a, *b;
  __device__ float2 operator()(i64 i) const { return make_float2(a[i], b[i]); }
};
struct F32Term {
  const float* a;
  __device__ float2 operator()(i64 i) const { return make_float2(a[i], 0.f); }
};
struct CrossEntropyFin {
  float *loss, *normalizer;
  __device__ void operator()(float sum_loss, float sum_w) const {
    normalizer[0] = sum_w;
    loss[0] = sum_loss / sum_w;
  }
};
struct StoreFin {
  float* out;
  __device__ void operator()(float s, float) const { out[0] = s; }
};
struct MeanFin {
  float* out;
  float n;
  __device__ void operator()(float s, float) const { out[0] = s / n; }
};

// dlogits[i, k] = dloss / normalizer * cross_entropy_grad(probs[i, k], ...); S = sum of the class weights
// (device value, or K without weights).
template <typename T, typename L>
struct CrossEntropyBackwardFn {
  T* dx;
  const float* probs;
  const L* labels;
  const float* weights;
  const float* sum_w;
  const float *dloss, *normalizer;
  i64 k_total;
  float eps, inv_k;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    const i64 row = i0 / k_total, k0 = i0 - row * k_total;
    const i64 y = static_cast<i64>(labels[row]);
    const bool bad = y < 0 || y >= k_total;  // as in the forward: NaN, never a read out of bounds
    const float wy = bad ? NAN : ldg_or(weights, y, 1.f);
    const float s = sum_w != nullptr ? __ldg(sum_w) : static_cast<float>(k_total);
    const float scale = __ldg(dloss) / __ldg(normalizer);
    float p[VEC];
    load_vec<float, VEC>(probs, i0, p);
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const i64 kk = k0 + k;
      p[k] = scale * cross_entropy_grad(p[k], kk == y, wy, ldg_or(weights, kk, 1.f), s, eps, inv_k);
    }
    store_vec<T, VEC>(dx, i0, p);
  }
};

// ---- binary cross-entropy ----------------------------------------------------------------------------------

template <typename T>
struct BceLogitsTerm {
  const T *z, *t, *w;
  __device__ float2 operator()(i64 i) const {
    const float wi = w != nullptr ? to_float(w[i]) : 1.f;
    return make_float2(wi * bce_with_logits_elem(to_float(z[i]), to_float(t[i])), 0.f);
  }
};

template <typename T>
struct BceTerm {
  const T *p, *t;
  __device__ float2 operator()(i64 i) const { return make_float2(bce_elem(to_float(p[i]), to_float(t[i])), 0.f); }
};

// dlogits = dloss * w * bce_with_logits_grad(z, t) / numel.
template <typename T>
struct BceLogitsBackwardFn {
  const T *z, *t, *w;
  T* dz;
  const float* dloss;
  float n;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    const float d = __ldg(dloss);
    float zv[VEC], tv[VEC], wv[VEC];
    load_vec<T, VEC>(z, i0, zv);
    load_vec<T, VEC>(t, i0, tv);
    if (w != nullptr) {
      load_vec<T, VEC>(w, i0, wv);
    } else {
#pragma unroll
      for (int k = 0; k < VEC; ++k) wv[k] = 1.f;
    }
#pragma unroll
    for (int k = 0; k < VEC; ++k) zv[k] = d * wv[k] * bce_with_logits_grad(zv[k], tv[k]) / n;
    store_vec<T, VEC>(dz, i0, zv);
  }
};

// dprobs = dloss * bce_grad(p, t) / numel.
template <typename T>
struct BceBackwardFn {
  const T *p, *t;
  T* dp;
  const float* dloss;
  float n;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    const float d = __ldg(dloss);
    float pv[VEC], tv[VEC];
    load_vec<T, VEC>(p, i0, pv);
    load_vec<T, VEC>(t, i0, tv);
#pragma unroll
    for (int k = 0; k < VEC; ++k) pv[k] = d * bce_grad(pv[k], tv[k]) / n;
    store_vec<T, VEC>(dp, i0, pv);
  }
};

}  // namespace

// ---- softmax and cross-entropy -----------------------------------------------------------------------------

void softmax_cross_entropy_forward(const Tensor& logits, const Tensor& labels, const Tensor& class_weights,
                                   float smoothing, Tensor& probs, Tensor& loss, Tensor& normalizer) {
  LaunchContext ctx(logits);
  const i64 k = logits.size(-1);
  const i64 n = k > 0 ? logits.numel() / k : 0;
  Tensor rows = Tensor::empty(Shape{2, std::max<i64>(n, 1)}, DType::f32, logits.device());
  float* row_loss = rows.data<float>();
  float* row_weight = row_loss + std::max<i64>(n, 1);
  const float* w = f32_or_null(class_weights);
  float* pp = probs.data<float>();
  LN_SWITCH_FLOAT(logits.dtype(), "softmax_cross_entropy_forward", T, {
    const T* z = logits.data<T>();
    if (labels.dtype() == DType::i64) {
      launch_softmax_rows<T, std::int64_t, true>(ctx, z, n, k, labels.data<std::int64_t>(), w, smoothing, pp,
                                                 row_loss, row_weight);
    } else {
      launch_softmax_rows<T, std::int32_t, true>(ctx, z, n, k, labels.data<std::int32_t>(), w, smoothing, pp,
                                                 row_loss, row_weight);
    }
  });
  launch_sum(ctx, n, PairRowsTerm{row_loss, row_weight}, CrossEntropyFin{loss.data<float>(), normalizer.data<float>()});
}

void softmax_cross_entropy_backward(const Tensor& dloss, const Tensor& labels, const Tensor& class_weights,
                                    float smoothing, const Tensor& probs, const Tensor& normalizer, Tensor& dlogits) {
  LaunchContext ctx(probs);
  const i64 k = probs.size(-1);
  if (k == 0) return;
  const float* w = f32_or_null(class_weights);
  Tensor sum_w_buf;
  const float* sum_w = nullptr;
  if (w != nullptr) {
    sum_w_buf = Tensor::empty(Shape{1}, DType::f32, probs.device());
    launch_sum(ctx, k, F32Term{w}, StoreFin{sum_w_buf.data<float>()});
    sum_w = sum_w_buf.data<float>();
  }
  const float* pp = probs.data<float>();
  const float* dl = dloss.data<float>();
  const float* norm = normalizer.data<float>();
  const float inv_k = 1.f / static_cast<float>(k);
  LN_SWITCH_FLOAT(dlogits.dtype(), "softmax_cross_entropy_backward", T, {
    T* dx = dlogits.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), k, {{dx, sizeof(T)}, {pp, sizeof(float)}});
    if (labels.dtype() == DType::i64) {
      launch_vec<max_vec_of<T>()>(ctx, dlogits.numel(), vec,
                                  CrossEntropyBackwardFn<T, std::int64_t>{dx, pp, labels.data<std::int64_t>(), w, sum_w,
                                                                          dl, norm, k, smoothing, inv_k});
    } else {
      launch_vec<max_vec_of<T>()>(ctx, dlogits.numel(), vec,
                                  CrossEntropyBackwardFn<T, std::int32_t>{dx, pp, labels.data<std::int32_t>(), w, sum_w,
                                                                          dl, norm, k, smoothing, inv_k});
    }
  });
}

void softmax(const Tensor& logits, Tensor& probs) {
  LaunchContext ctx(logits);
  const i64 k = logits.size(-1);
  if (k == 0) return;
  const i64 n = logits.numel() / k;
  float* pp = probs.data<float>();
  LN_SWITCH_FLOAT(logits.dtype(), "softmax", T, {
    launch_softmax_rows<T, std::int32_t, false>(ctx, logits.data<T>(), n, k, nullptr, nullptr, 0.f, pp, nullptr,
                                                nullptr);
  });
}

// ---- binary cross-entropy ----------------------------------------------------------------------------------

void bce_with_logits(const Tensor& logits, const Tensor& targets, const Tensor& weight, Tensor& loss) {
  LaunchContext ctx(logits);
  const i64 n = logits.numel();
  LN_SWITCH_FLOAT(logits.dtype(), "bce_with_logits", T, {
    const T* wp = weight.defined() ? weight.data<T>() : nullptr;
    launch_sum(ctx, n, BceLogitsTerm<T>{logits.data<T>(), targets.data<T>(), wp},
               MeanFin{loss.data<float>(), static_cast<float>(n)});
  });
}

void bce_with_logits_backward(const Tensor& dloss, const Tensor& logits, const Tensor& targets, const Tensor& weight,
                              Tensor& dlogits) {
  LaunchContext ctx(logits);
  const i64 n = logits.numel();
  const float* dl = dloss.data<float>();
  LN_SWITCH_FLOAT(logits.dtype(), "bce_with_logits_backward", T, {
    const T* zp = logits.data<T>();
    const T* tp = targets.data<T>();
    const T* wp = weight.defined() ? weight.data<T>() : nullptr;
    T* dp = dlogits.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), 0, {{zp, sizeof(T)}, {tp, sizeof(T)}, {wp, sizeof(T)}, {dp, sizeof(T)}});
    launch_vec<max_vec_of<T>()>(ctx, n, vec, BceLogitsBackwardFn<T>{zp, tp, wp, dp, dl, static_cast<float>(n)});
  });
}

void bce(const Tensor& probs, const Tensor& targets, Tensor& loss) {
  LaunchContext ctx(probs);
  const i64 n = probs.numel();
  LN_SWITCH_FLOAT(probs.dtype(), "bce", T, {
    launch_sum(ctx, n, BceTerm<T>{probs.data<T>(), targets.data<T>()}, MeanFin{loss.data<float>(), static_cast<float>(n)});
  });
}

void bce_backward(const Tensor& dloss, const Tensor& probs, const Tensor& targets, Tensor& dprobs) {
  LaunchContext ctx(probs);
  const i64 n = probs.numel();
  const float* dl = dloss.data<float>();
  LN_SWITCH_FLOAT(probs.dtype(), "bce_backward", T, {
    const T* pp = probs.data<T>();
    const T* tp = targets.data<T>();
    T* dp = dprobs.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), 0, {{pp, sizeof(T)}, {tp, sizeof(T)}, {dp, sizeof(T)}});
    launch_vec<max_vec_of<T>()>(ctx, n, vec, BceBackwardFn<T>{pp, tp, dp, dl, static_cast<float>(n)});
  });
}

}  // namespace livernet::kernels::cuda
