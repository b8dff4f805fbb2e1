// CUDA batch norm (training statistics, evaluation, backward; ReLU fused). Statistics are chunked
// shifted sums merged with Chan's formula in a fixed order: deterministic, no float atomics. The
// per-element math is kernels/nn_math.h's, so the CPU backend computes the same values.
#include <cfloat>
#include <cmath>
#include <cstdint>

#include "kernels/backend.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/nn_math.h"
#include "kernels/type_switch.h"

namespace livernet::kernels::cuda {

namespace {
// ---- batch norm ------------------------------------------------------------------------------------------

constexpr int kBnTile = 32;       // consecutive channels per block (one warp row: coalesced along C)
constexpr int kBnRows = 8;        // thread rows of a statistics block (block = 32 x 8)
constexpr int kBnMergeRows = 16;  // thread rows of a combining block (block = 32 x 16)

// Row chunk `chunk` of `chunks` over M rows: [m * chunk / chunks, m * (chunk + 1) / chunks).
__host__ __device__ __forceinline__ i64 chunk_begin(i64 m, int chunk, int chunks) { return m * chunk / chunks; }

// How many row chunks the per-channel reductions split M into: enough blocks to fill the device, at
// least 64 rows per chunk (8 per thread row), at most 1024 chunks.
int bn_chunks(const LaunchContext& ctx, i64 m, i64 c) {
  const i64 tiles = (c + kBnTile - 1) / kBnTile;
  const i64 target = static_cast<i64>(livernet::cuda::device_properties(ctx.device).multiProcessorCount) * 8;
  const i64 want = (target + tiles - 1) / tiles;
  return static_cast<int>(std::max<i64>(1, std::min<i64>({want, (m + 63) / 64, 1024})));
}

// Per-chunk statistics of x viewed as [M, C]. Block (32 x 8): threadIdx.x is the channel inside a tile
// of 32 (coalesced reads along C), blockIdx.y the row chunk, the 8 thread rows stride over its rows.
// Sums are shifted by the chunk's first value of the channel (shared by the whole column, so the
// shifted sums just add up), which keeps sum((x-K)^2) - (sum(x-K))^2/n accurate. Writes the chunk's
// mean and M2 (sum of squared deviations) to pmean / pm2 [chunks, C].
template <typename T>
__global__ void bn_partial_stats_kernel(const T* __restrict__ x, i64 m, i64 c_total, float* __restrict__ pmean,
                                        float* __restrict__ pm2) {
  const i64 c = static_cast<i64>(blockIdx.x) * kBnTile + threadIdx.x;
  const int chunks = static_cast<int>(gridDim.y), chunk = static_cast<int>(blockIdx.y);
  const i64 k0 = chunk_begin(m, chunk, chunks), k1 = chunk_begin(m, chunk + 1, chunks);
  float s1 = 0.f, s2 = 0.f, shift = 0.f;
  if (c < c_total) {
    const T* p = x + c;
    shift = to_float(p[k0 * c_total]);
    i64 k = k0 + threadIdx.y;
    for (; k + 3 * kBnRows < k1; k += 4 * kBnRows) {
      float d[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) d[u] = to_float(p[(k + u * kBnRows) * c_total]) - shift;
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        s1 += d[u];
        s2 += d[u] * d[u];
      }
    }
    for (; k < k1; k += kBnRows) {
      const float d = to_float(p[k * c_total]) - shift;
      s1 += d;
      s2 += d * d;
    }
  }
  __shared__ float t1[kBnRows][kBnTile + 1], t2[kBnRows][kBnTile + 1];
  t1[threadIdx.y][threadIdx.x] = s1;
  t2[threadIdx.y][threadIdx.x] = s2;
  __syncthreads();
  if (threadIdx.y == 0 && c < c_total) {
    for (int r = 1; r < kBnRows; ++r) {
      s1 += t1[r][threadIdx.x];
      s2 += t2[r][threadIdx.x];
    }
    const float n = static_cast<float>(k1 - k0);
    pmean[chunk * c_total + c] = shift + s1 / n;
    pm2[chunk * c_total + c] = fmaxf(s2 - s1 * s1 / n, 0.f);
  }
}

// (count, mean, M2) of a set of values, merged with Chan et al.'s pairwise formula.
struct BnStat {
  i64 n;
  float mean, m2;
};

__device__ __forceinline__ BnStat bn_merge(const BnStat& a, const BnStat& b) {
  if (b.n == 0) return a;
  if (a.n == 0) return b;
  const i64 n = a.n + b.n;
  const float fb = static_cast<float>(b.n) / static_cast<float>(n);
  const float delta = b.mean - a.mean;
  return BnStat{n, a.mean + delta * fb, a.m2 + b.m2 + delta * delta * static_cast<float>(a.n) * fb};
}

// Combines the chunk statistics per channel. Block (32 x 16) per tile of 32 channels: thread row r
// merges chunks r, r + 16, ... in order, then thread row 0 merges the 16 results in order. Writes the
// batch mean / invstd and updates the running statistics (unbiased variance) when they are given.
__global__ void bn_finalize_stats_kernel(const float* __restrict__ pmean, const float* __restrict__ pm2, int chunks,
                                         i64 m, i64 c_total, float eps, float momentum, float* __restrict__ save_mean,
                                         float* __restrict__ save_invstd, float* __restrict__ running_mean,
                                         float* __restrict__ running_var) {
  const i64 c = static_cast<i64>(blockIdx.x) * kBnTile + threadIdx.x;
  BnStat s{0, 0.f, 0.f};
  if (c < c_total) {
    for (int j = threadIdx.y; j < chunks; j += kBnMergeRows) {
      const BnStat b{chunk_begin(m, j + 1, chunks) - chunk_begin(m, j, chunks), pmean[j * c_total + c],
                     pm2[j * c_total + c]};
      s = bn_merge(s, b);
    }
  }
  __shared__ i64 sn[kBnMergeRows][kBnTile + 1];
  __shared__ float smean[kBnMergeRows][kBnTile + 1], sm2[kBnMergeRows][kBnTile + 1];
  sn[threadIdx.y][threadIdx.x] = s.n;
  smean[threadIdx.y][threadIdx.x] = s.mean;
  sm2[threadIdx.y][threadIdx.x] = s.m2;
  __syncthreads();
  if (threadIdx.y != 0 || c >= c_total) return;
  for (int r = 1; r < kBnMergeRows; ++r)
    s = bn_merge(s, BnStat{sn[r][threadIdx.x], smean[r][threadIdx.x], sm2[r][threadIdx.x]});
  const float mean = s.mean;
  const float var = s.m2 / static_cast<float>(m);
  save_mean[c] = mean;
  save_invstd[c] = 1.f / sqrtf(var + eps);
  if (running_mean != nullptr) running_mean[c] = (1.f - momentum) * running_mean[c] + momentum * mean;
  if (running_var != nullptr) {
    const float unbiased = m > 1 ? var * static_cast<float>(m) / static_cast<float>(m - 1) : var;
    running_var[c] = (1.f - momentum) * running_var[c] + momentum * unbiased;
  }
}

// Eval mode: the running statistics become save_mean / save_invstd.
__global__ void bn_eval_stats_kernel(const float* __restrict__ running_mean, const float* __restrict__ running_var,
                                     i64 c_total, float eps, float* __restrict__ save_mean,
                                     float* __restrict__ save_invstd) {
  for (i64 c = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; c < c_total;
       c += static_cast<i64>(gridDim.x) * blockDim.x) {
    save_mean[c] = running_mean[c];
    save_invstd[c] = 1.f / sqrtf(running_var[c] + eps);
  }
}

// y = bn_apply(x) with per-channel parameters (channel = flat index % C, once per vector).
template <typename T>
struct BnApplyFn {
  const T* x;
  T* y;
  const float *mean, *invstd, *gamma, *beta;
  i64 c_total;
  bool relu;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    const i64 c0 = i0 % c_total;
    float v[VEC];
    load_vec<T, VEC>(x, i0, v);
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const i64 c = c0 + k;
      v[k] = bn_apply(v[k], __ldg(mean + c), __ldg(invstd + c), ldg_or(gamma, c, 1.f), ldg_or(beta, c, 0.f), relu);
    }
    store_vec<T, VEC>(y, i0, v);
  }
};

// Per-chunk sums of g and g * xhat (g = dy, through the fused relu's mask when RELU) for the backward,
// with the same 32 x 8 layout as bn_partial_stats_kernel. Writes psum_g / psum_gx [chunks, C].
template <typename T, bool RELU>
__global__ void bn_backward_partial_kernel(const T* __restrict__ dy, const T* __restrict__ x,
                                           const T* __restrict__ y, const float* __restrict__ mean,
                                           const float* __restrict__ invstd, i64 m, i64 c_total,
                                           float* __restrict__ psum_g, float* __restrict__ psum_gx) {
  const i64 c = static_cast<i64>(blockIdx.x) * kBnTile + threadIdx.x;
  const int chunks = static_cast<int>(gridDim.y), chunk = static_cast<int>(blockIdx.y);
  const i64 k0 = chunk_begin(m, chunk, chunks), k1 = chunk_begin(m, chunk + 1, chunks);
  float sg = 0.f, sgx = 0.f;
  if (c < c_total) {
    const float mu = mean[c], is = invstd[c];
    i64 k = k0 + threadIdx.y;
    for (; k + 3 * kBnRows < k1; k += 4 * kBnRows) {
      float g[4], xv[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const i64 i = (k + u * kBnRows) * c_total + c;
        g[u] = RELU ? relu_backward_f(to_float(y[i]), to_float(dy[i])) : to_float(dy[i]);
        xv[u] = to_float(x[i]);
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        sg += g[u];
        sgx += g[u] * ((xv[u] - mu) * is);
      }
    }
    for (; k < k1; k += kBnRows) {
      const i64 i = k * c_total + c;
      const float g = RELU ? relu_backward_f(to_float(y[i]), to_float(dy[i])) : to_float(dy[i]);
      sg += g;
      sgx += g * ((to_float(x[i]) - mu) * is);
    }
  }
  __shared__ float t1[kBnRows][kBnTile + 1], t2[kBnRows][kBnTile + 1];
  t1[threadIdx.y][threadIdx.x] = sg;
  t2[threadIdx.y][threadIdx.x] = sgx;
  __syncthreads();
  if (threadIdx.y == 0 && c < c_total) {
    for (int r = 1; r < kBnRows; ++r) {
      sg += t1[r][threadIdx.x];
      sgx += t2[r][threadIdx.x];
    }
    psum_g[chunk * c_total + c] = sg;
    psum_gx[chunk * c_total + c] = sgx;
  }
}

// dbeta[c] = sum of the chunk sums of g, dgamma[c] = those of g * xhat; block (32 x 16) per tile of 32
// channels, thread row r adding chunks r, r + 16, ..., then thread row 0 adding the rows in order.
__global__ void bn_backward_finalize_kernel(const float* __restrict__ psum_g, const float* __restrict__ psum_gx,
                                            int chunks, i64 c_total, float* __restrict__ dbeta,
                                            float* __restrict__ dgamma) {
  const i64 c = static_cast<i64>(blockIdx.x) * kBnTile + threadIdx.x;
  float sg = 0.f, sgx = 0.f;
  if (c < c_total) {
    for (int j = threadIdx.y; j < chunks; j += kBnMergeRows) {
      sg += psum_g[j * c_total + c];
      sgx += psum_gx[j * c_total + c];
    }
  }
  __shared__ float t1[kBnMergeRows][kBnTile + 1], t2[kBnMergeRows][kBnTile + 1];
  t1[threadIdx.y][threadIdx.x] = sg;
  t2[threadIdx.y][threadIdx.x] = sgx;
  __syncthreads();
  if (threadIdx.y != 0 || c >= c_total) return;
  for (int r = 1; r < kBnMergeRows; ++r) {
    sg += t1[r][threadIdx.x];
    sgx += t2[r][threadIdx.x];
  }
  dbeta[c] = sg;
  dgamma[c] = sgx;
}

// dx of batch norm per element, from the channel sums (train) or as a per-channel scale (eval).
template <typename T>
struct BnBackwardDxFn {
  const T *dy, *x, *y;
  T* dx;
  const float *mean, *invstd, *gamma, *sum_g, *sum_gx;
  i64 c_total;
  float inv_m;
  bool relu, train;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    const i64 c0 = i0 % c_total;
    float g[VEC], xv[VEC], out[VEC];
    load_vec<T, VEC>(dy, i0, g);
    if (relu) {
      float yv[VEC];
      load_vec<T, VEC>(y, i0, yv);
#pragma unroll
      for (int k = 0; k < VEC; ++k) g[k] = relu_backward_f(yv[k], g[k]);
    }
    if (train) {
      load_vec<T, VEC>(x, i0, xv);
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        const i64 c = c0 + k;
        out[k] = bn_backward_train(g[k], xv[k], __ldg(mean + c), __ldg(invstd + c), ldg_or(gamma, c, 1.f),
                                   __ldg(sum_g + c), __ldg(sum_gx + c), inv_m);
      }
    } else {
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        const i64 c = c0 + k;
        out[k] = g[k] * ldg_or(gamma, c, 1.f) * __ldg(invstd + c);
      }
    }
    store_vec<T, VEC>(dx, i0, out);
  }
};


}  // namespace

// ---- batch norm ------------------------------------------------------------------------------------------

void batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                      Tensor& running_var, float momentum, float eps, bool relu, Tensor& y, Tensor& save_mean,
                      Tensor& save_invstd) {
  LaunchContext ctx(x);
  const i64 c = x.size(-1);
  if (c == 0 || x.numel() == 0) return;
  const i64 m = x.numel() / c;
  const i64 tiles = (c + kBnTile - 1) / kBnTile;
  const int chunks = bn_chunks(ctx, m, c);
  Tensor partial = Tensor::empty(Shape{2, chunks, c}, DType::f32, x.device());
  float* pmean = partial.data<float>();
  float* pm2 = pmean + chunks * c;
  float* mean = save_mean.data<float>();
  float* invstd = save_invstd.data<float>();
  LN_SWITCH_FLOAT(x.dtype(), "batch_norm_train", T, {
    bn_partial_stats_kernel<T><<<dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(chunks)),
                                 dim3(kBnTile, kBnRows), 0, ctx.stream>>>(x.data<T>(), m, c, pmean, pm2);
    LN_CUDA_CHECK_LAUNCH();
    bn_finalize_stats_kernel<<<static_cast<unsigned>(tiles), dim3(kBnTile, kBnMergeRows), 0, ctx.stream>>>(
        pmean, pm2, chunks, m, c, eps, momentum, mean, invstd, f32_or_null(running_mean), f32_or_null(running_var));
    LN_CUDA_CHECK_LAUNCH();
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), c, {{xp, sizeof(T)}, {yp, sizeof(T)}});
    launch_vec<max_vec_of<T>()>(ctx, x.numel(), vec,
                                BnApplyFn<T>{xp, yp, mean, invstd, f32_or_null(gamma), f32_or_null(beta), c, relu});
  });
}

void batch_norm_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                     const Tensor& running_var, float eps, bool relu, Tensor& y, Tensor& save_mean,
                     Tensor& save_invstd) {
  LaunchContext ctx(x);
  const i64 c = x.size(-1);
  if (c == 0) return;
  float* mean = save_mean.data<float>();
  float* invstd = save_invstd.data<float>();
  bn_eval_stats_kernel<<<grid_for(c, ctx.device), kBlock, 0, ctx.stream>>>(
      running_mean.data<float>(), running_var.data<float>(), c, eps, mean, invstd);
  LN_CUDA_CHECK_LAUNCH();
  LN_SWITCH_FLOAT(x.dtype(), "batch_norm_eval", T, {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), c, {{xp, sizeof(T)}, {yp, sizeof(T)}});
    launch_vec<max_vec_of<T>()>(ctx, x.numel(), vec,
                                BnApplyFn<T>{xp, yp, mean, invstd, f32_or_null(gamma), f32_or_null(beta), c, relu});
  });
}

void batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& y, const Tensor& gamma,
                         const Tensor& save_mean, const Tensor& save_invstd, bool train, bool relu, Tensor& dx,
                         Tensor& dgamma, Tensor& dbeta) {
  LaunchContext ctx(x);
  const i64 c = x.size(-1);
  if (c == 0) return;
  const i64 m = x.numel() / c;
  const i64 tiles = (c + kBnTile - 1) / kBnTile;
  const int chunks = m > 0 ? bn_chunks(ctx, m, c) : 1;
  Tensor partial = Tensor::empty(Shape{2, chunks, c}, DType::f32, x.device());
  float* psum_g = partial.data<float>();
  float* psum_gx = psum_g + chunks * c;
  const float* mean = save_mean.data<float>();
  const float* invstd = save_invstd.data<float>();
  float* sum_g = dbeta.data<float>();
  float* sum_gx = dgamma.data<float>();
  LN_SWITCH_FLOAT(x.dtype(), "batch_norm_backward", T, {
    const T* dyp = dy.data<T>();
    const T* xp = x.data<T>();
    const T* yp = relu ? y.data<T>() : nullptr;
    T* dxp = dx.data<T>();
    const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(chunks));
    if (relu) {
      bn_backward_partial_kernel<T, true><<<grid, dim3(kBnTile, kBnRows), 0, ctx.stream>>>(
          dyp, xp, yp, mean, invstd, m, c, psum_g, psum_gx);
    } else {
      bn_backward_partial_kernel<T, false><<<grid, dim3(kBnTile, kBnRows), 0, ctx.stream>>>(
          dyp, xp, yp, mean, invstd, m, c, psum_g, psum_gx);
    }
    LN_CUDA_CHECK_LAUNCH();
    bn_backward_finalize_kernel<<<static_cast<unsigned>(tiles), dim3(kBnTile, kBnMergeRows), 0, ctx.stream>>>(
        psum_g, psum_gx, chunks, c, sum_g, sum_gx);
    LN_CUDA_CHECK_LAUNCH();
    const int vec = pick_vec(max_vec_of<T>(), c, {{dyp, sizeof(T)}, {xp, sizeof(T)}, {yp, sizeof(T)}, {dxp, sizeof(T)}});
    const float inv_m = m > 0 ? 1.f / static_cast<float>(m) : 0.f;
    launch_vec<max_vec_of<T>()>(ctx, x.numel(), vec,
                                BnBackwardDxFn<T>{dyp, xp, yp, dxp, mean, invstd, f32_or_null(gamma), sum_g, sum_gx, c,
                                                  inv_m, relu, train});
  });
}

}  // namespace livernet::kernels::cuda
