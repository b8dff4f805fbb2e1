// CUDA neural-network kernels: batch norm, pooling, block copies, dropout, losses and the small
// element-wise ops around them (convolution and GEMM live elsewhere). The per-element math comes from
// kernels/nn_math.h, so the CPU backend computes the same values. Every reduction is deterministic:
// fixed partitions, fixed combination order, no float atomics.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <initializer_list>

#include "kernels/backend.h"
#include "kernels/cuda/common.cuh"
#include "kernels/nn_math.h"
#include "kernels/type_switch.h"

namespace livernet::kernels::cuda {

namespace {

using i64 = std::int64_t;

// ---- vectorised element-wise launches ------------------------------------------------------------------

template <typename T, int VEC>
__device__ __forceinline__ void load_vec(const T* p, i64 i, float (&out)[VEC]) {
  const Vec<T, VEC> v = *reinterpret_cast<const Vec<T, VEC>*>(p + i);
#pragma unroll
  for (int k = 0; k < VEC; ++k) out[k] = to_float(v.v[k]);
}

template <typename T, int VEC>
__device__ __forceinline__ void store_vec(T* p, i64 i, const float (&in)[VEC]) {
  Vec<T, VEC> v;
#pragma unroll
  for (int k = 0; k < VEC; ++k) v.v[k] = from_float<T>(in[k]);
  *reinterpret_cast<Vec<T, VEC>*>(p + i) = v;
}

__device__ __forceinline__ float ldg_or(const float* p, i64 i, float fallback) {
  return p != nullptr ? __ldg(p + i) : fallback;
}

struct VecPtr {
  const void* p;
  std::size_t elem_size;
};

// The widest vector (at most max_vec elements) such that `inner` (a run of elements that a vector must
// not straddle, e.g. the channel count; 0 for none) is a multiple of it and every pointer is aligned
// to a whole vector of its own element type.
int pick_vec(int max_vec, i64 inner, std::initializer_list<VecPtr> ptrs) {
  for (int v = max_vec; v > 1; v /= 2) {
    bool ok = inner % v == 0;
    for (const VecPtr& q : ptrs)
      if (q.p != nullptr && reinterpret_cast<std::uintptr_t>(q.p) % (static_cast<std::size_t>(v) * q.elem_size) != 0)
        ok = false;
    if (ok) return v;
  }
  return 1;
}

template <typename T>
constexpr int max_vec_of() {
  return static_cast<int>(16 / sizeof(T));
}

// Calls f.apply<VEC>(i) for i = 0, VEC, 2*VEC, ... below n with a grid-stride loop, then the tail that
// does not fill a vector one element at a time. The functors do their own loads and stores (through
// load_vec / store_vec), so ops with several inputs of different types share this one launcher; a
// functor that works per channel gets whole vectors inside one channel run when VEC divides C.
template <int VEC, typename F>
__global__ void vec_kernel(i64 n, F f) {
  const i64 stride = static_cast<i64>(gridDim.x) * blockDim.x;
  const i64 tid = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x;
  const i64 nvec = n / VEC;
  for (i64 v = tid; v < nvec; v += stride) f.template apply<VEC>(v * VEC);
  if constexpr (VEC > 1) {
    for (i64 i = nvec * VEC + tid; i < n; i += stride) f.template apply<1>(i);
  }
}

template <int MAXV, typename F>
void launch_vec(const LaunchContext& ctx, i64 n, int vec, const F& f) {
  if (n <= 0) return;
  if (MAXV >= 8 && vec == 8) {
    vec_kernel<(MAXV >= 8 ? 8 : 1)><<<grid_for(n / 8 + 1, ctx.device), kBlock, 0, ctx.stream>>>(n, f);
  } else if (MAXV >= 4 && vec >= 4) {
    vec_kernel<(MAXV >= 4 ? 4 : 1)><<<grid_for(n / 4 + 1, ctx.device), kBlock, 0, ctx.stream>>>(n, f);
  } else if (vec >= 2) {
    vec_kernel<2><<<grid_for(n / 2 + 1, ctx.device), kBlock, 0, ctx.stream>>>(n, f);
  } else {
    vec_kernel<1><<<grid_for(n, ctx.device), kBlock, 0, ctx.stream>>>(n, f);
  }
  LN_CUDA_CHECK_LAUNCH();
}

// ---- deterministic block and global sums ----------------------------------------------------------------

__device__ __forceinline__ float2 warp_sum2(float2 v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    v.x += __shfl_xor_sync(0xffffffffu, v.x, off);
    v.y += __shfl_xor_sync(0xffffffffu, v.y, off);
  }
  return v;
}

// Sum of v over the block (blockDim.x a multiple of 32); the result is valid in thread 0. Call once per
// kernel (the shared buffer is not re-synchronised for reuse).
__device__ float2 block_sum2(float2 v) {
  __shared__ float2 warp_partials[32];
  v = warp_sum2(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_partials[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int nwarps = static_cast<int>(blockDim.x >> 5);
    v = lane < nwarps ? warp_partials[lane] : make_float2(0.f, 0.f);
    v = warp_sum2(v);
  }
  return v;
}

// Stage 1 of a two-value sum: block b adds f(i) over its contiguous chunk [b * chunk, (b + 1) * chunk),
// threads striding inside it (coalesced), then a shuffle tree. The partition depends only on n, so the
// result is bit-identical from run to run and device to device.
template <typename F>
__global__ void sum_partial_kernel(i64 n, i64 chunk, F f, float2* __restrict__ partial) {
  const i64 start = blockIdx.x * chunk;
  const i64 end = start + chunk < n ? start + chunk : n;
  float2 acc = make_float2(0.f, 0.f);
  for (i64 i = start + threadIdx.x; i < end; i += blockDim.x) {
    const float2 v = f(i);
    acc.x += v.x;
    acc.y += v.y;
  }
  acc = block_sum2(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// Stage 2: one block adds the stage-1 partials in a fixed order and hands both totals to fin.
template <typename Fin>
__global__ void sum_final_kernel(const float2* __restrict__ partial, int nb, Fin fin) {
  float2 acc = make_float2(0.f, 0.f);
  for (int i = threadIdx.x; i < nb; i += blockDim.x) {
    acc.x += partial[i].x;
    acc.y += partial[i].y;
  }
  acc = block_sum2(acc);
  if (threadIdx.x == 0) fin(acc.x, acc.y);
}

// fin(sum_i f(i).x, sum_i f(i).y) for i < n, on the device.
template <typename F, typename Fin>
void launch_sum(const LaunchContext& ctx, i64 n, const F& f, const Fin& fin) {
  const i64 chunk = std::max<i64>(4096, (n + 1023) / 1024);
  const int nb = static_cast<int>(std::max<i64>(1, (n + chunk - 1) / chunk));
  Tensor partial = Tensor::empty(Shape{nb, 2}, DType::f32, Device::cuda(ctx.device));
  float2* pp = reinterpret_cast<float2*>(partial.data<float>());
  sum_partial_kernel<<<static_cast<unsigned>(nb), kBlock, 0, ctx.stream>>>(n, chunk, f, pp);
  LN_CUDA_CHECK_LAUNCH();
  sum_final_kernel<<<1, kBlock, 0, ctx.stream>>>(static_cast<const float2*>(pp), nb, fin);
  LN_CUDA_CHECK_LAUNCH();
}

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

const float* f32_or_null(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }
float* f32_or_null(Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }

// ---- pooling -------------------------------------------------------------------------------------------

// NHWC geometry of a 2-D pool: input [N, H, W, C], output [N, Ho, Wo, C].
struct PoolGeom {
  i64 c;
  int h, w, ho, wo;
  int kh, kw, sh, sw, ph, pw;
  bool include_pad;

  static PoolGeom make(const Tensor& x, i64 ho, i64 wo, const Pool2dParams& p) {
    return PoolGeom{x.size(3), static_cast<int>(x.size(1)), static_cast<int>(x.size(2)), static_cast<int>(ho),
                    static_cast<int>(wo), p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.pad_h, p.pad_w,
                    p.count_include_pad};
  }
  // The average pool's divisor for the window starting at (h0, w0).
  __device__ int divisor(int h0, int w0) const {
    return include_pad ? kh * kw : pool_window_count(h0, w0, kh, kw, h, w);
  }
  // Output rows (columns) whose window covers input row ih (column iw): [lo, hi], possibly empty.
  __device__ void out_range(int i, int pad, int k, int s, int out, int& lo, int& hi) const {
    const int first = i + pad - k + 1;
    lo = first <= 0 ? 0 : (first + s - 1) / s;
    hi = (i + pad) / s;
    if (hi > out - 1) hi = out - 1;
  }
};

// One thread per VEC consecutive channels of one output pixel: scans the in-bounds taps row-major,
// keeping the first maximum (a NaN wins and the first NaN stays). Reads are coalesced along C.
template <typename T>
struct MaxPoolForwardFn {
  const T* x;
  T* y;
  std::int32_t* indices;
  PoolGeom g;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    const i64 c0 = i0 % g.c;
    i64 r = i0 / g.c;
    const int ow = static_cast<int>(r % g.wo);
    r /= g.wo;
    const int oh = static_cast<int>(r % g.ho);
    const i64 n = r / g.ho;
    const int h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
    const int hs = h0 > 0 ? h0 : 0, he = h0 + g.kh < g.h ? h0 + g.kh : g.h;
    const int ws = w0 > 0 ? w0 : 0, we = w0 + g.kw < g.w ? w0 + g.kw : g.w;
    float best[VEC];
    int arg[VEC];
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      best[k] = -INFINITY;
      arg[k] = -1;
    }
    for (int ih = hs; ih < he; ++ih) {
      for (int iw = ws; iw < we; ++iw) {
        float v[VEC];
        load_vec<T, VEC>(x, ((n * g.h + ih) * g.w + iw) * g.c + c0, v);
        const int pos = ih * g.w + iw;
#pragma unroll
        for (int k = 0; k < VEC; ++k) {
          if (arg[k] < 0 || (!isnan(best[k]) && (v[k] > best[k] || isnan(v[k])))) {
            best[k] = v[k];
            arg[k] = pos;
          }
        }
      }
    }
    store_vec<T, VEC>(y, i0, best);
#pragma unroll
    for (int k = 0; k < VEC; ++k)
      if (indices) indices[i0 + k] = arg[k];
  }
};

// Gather over input pixels: each thread visits the output windows covering its pixel (row-major) and
// adds dy where the window's recorded argmax is this pixel. No atomics, so the result is deterministic.
template <typename T>
struct MaxPoolBackwardFn {
  const T* dy;
  const std::int32_t* indices;
  T* dx;
  PoolGeom g;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    const i64 c0 = i0 % g.c;
    i64 r = i0 / g.c;
    const int iw = static_cast<int>(r % g.w);
    r /= g.w;
    const int ih = static_cast<int>(r % g.h);
    const i64 n = r / g.h;
    int oh_lo, oh_hi, ow_lo, ow_hi;
    g.out_range(ih, g.ph, g.kh, g.sh, g.ho, oh_lo, oh_hi);
    g.out_range(iw, g.pw, g.kw, g.sw, g.wo, ow_lo, ow_hi);
    const int target = ih * g.w + iw;
    float acc[VEC];
#pragma unroll
    for (int k = 0; k < VEC; ++k) acc[k] = 0.f;
    for (int oh = oh_lo; oh <= oh_hi; ++oh) {
      for (int ow = ow_lo; ow <= ow_hi; ++ow) {
        const i64 o = ((n * g.ho + oh) * g.wo + ow) * g.c + c0;
        float d[VEC];
        load_vec<T, VEC>(dy, o, d);
#pragma unroll
        for (int k = 0; k < VEC; ++k)
          if (__ldg(indices + o + k) == target) acc[k] += d[k];
      }
    }
    store_vec<T, VEC>(dx, i0, acc);
  }
};

// Average of the in-bounds taps of each window over its divisor; layout as MaxPoolForwardFn.
template <typename T>
struct AvgPoolForwardFn {
  const T* x;
  T* y;
  PoolGeom g;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    const i64 c0 = i0 % g.c;
    i64 r = i0 / g.c;
    const int ow = static_cast<int>(r % g.wo);
    r /= g.wo;
    const int oh = static_cast<int>(r % g.ho);
    const i64 n = r / g.ho;
    const int h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
    const int hs = h0 > 0 ? h0 : 0, he = h0 + g.kh < g.h ? h0 + g.kh : g.h;
    const int ws = w0 > 0 ? w0 : 0, we = w0 + g.kw < g.w ? w0 + g.kw : g.w;
    float acc[VEC];
#pragma unroll
    for (int k = 0; k < VEC; ++k) acc[k] = 0.f;
    for (int ih = hs; ih < he; ++ih) {
      for (int iw = ws; iw < we; ++iw) {
        float v[VEC];
        load_vec<T, VEC>(x, ((n * g.h + ih) * g.w + iw) * g.c + c0, v);
#pragma unroll
        for (int k = 0; k < VEC; ++k) acc[k] += v[k];
      }
    }
    const float div = static_cast<float>(g.divisor(h0, w0));
#pragma unroll
    for (int k = 0; k < VEC; ++k) acc[k] = acc[k] / div;
    store_vec<T, VEC>(y, i0, acc);
  }
};

// Gather over input pixels: the sum of dy / divisor over the output windows covering the pixel.
template <typename T>
struct AvgPoolBackwardFn {
  const T* dy;
  T* dx;
  PoolGeom g;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    const i64 c0 = i0 % g.c;
    i64 r = i0 / g.c;
    const int iw = static_cast<int>(r % g.w);
    r /= g.w;
    const int ih = static_cast<int>(r % g.h);
    const i64 n = r / g.h;
    int oh_lo, oh_hi, ow_lo, ow_hi;
    g.out_range(ih, g.ph, g.kh, g.sh, g.ho, oh_lo, oh_hi);
    g.out_range(iw, g.pw, g.kw, g.sw, g.wo, ow_lo, ow_hi);
    float acc[VEC];
#pragma unroll
    for (int k = 0; k < VEC; ++k) acc[k] = 0.f;
    for (int oh = oh_lo; oh <= oh_hi; ++oh) {
      for (int ow = ow_lo; ow <= ow_hi; ++ow) {
        const float div = static_cast<float>(g.divisor(oh * g.sh - g.ph, ow * g.sw - g.pw));
        float d[VEC];
        load_vec<T, VEC>(dy, ((n * g.ho + oh) * g.wo + ow) * g.c + c0, d);
#pragma unroll
        for (int k = 0; k < VEC; ++k) acc[k] += d[k] / div;
      }
    }
    store_vec<T, VEC>(dx, i0, acc);
  }
};

// dx[n, h, w, c] = dy[n, c] / (H * W).
template <typename T>
struct GlobalAvgPoolBackwardFn {
  const T* dy;
  T* dx;
  i64 c, hwc;
  float hw;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    const i64 c0 = i0 % c, n = i0 / hwc;
    float v[VEC];
    load_vec<T, VEC>(dy, n * c + c0, v);
#pragma unroll
    for (int k = 0; k < VEC; ++k) v[k] = v[k] / hw;
    store_vec<T, VEC>(dx, i0, v);
  }
};

// ---- block copies ---------------------------------------------------------------------------------------

// Copies batch x rows x units words W (a word = 1..16 bytes, as wide as the offsets allow); the flat
// word index is split with index type I (32-bit when it fits: the divisions dominate otherwise).
template <typename W, typename I>
__global__ void copy_blocks_kernel(const W* __restrict__ src, W* __restrict__ dst, I total, I units, I rows,
                                   i64 src_ld, i64 src_bs, i64 dst_ld, i64 dst_bs) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I t = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    const I j = t % units, q = t / units;
    const I r = q % rows, b = q / rows;
    dst[static_cast<i64>(b) * dst_bs + static_cast<i64>(r) * dst_ld + static_cast<i64>(j)] =
        src[static_cast<i64>(b) * src_bs + static_cast<i64>(r) * src_ld + static_cast<i64>(j)];
  }
}

template <typename W>
void launch_copy_blocks(const LaunchContext& ctx, const char* src, char* dst, i64 src_ld, i64 src_bs, i64 dst_ld,
                        i64 dst_bs, i64 batch, i64 rows, i64 col_bytes) {
  constexpr i64 w = sizeof(W);
  const i64 units = col_bytes / w, total = batch * rows * units;
  const W* s = reinterpret_cast<const W*>(src);
  W* d = reinterpret_cast<W*>(dst);
  const unsigned grid = grid_for(total, ctx.device);
  if (total <= (i64{1} << 31)) {
    copy_blocks_kernel<W, std::uint32_t><<<grid, kBlock, 0, ctx.stream>>>(
        s, d, static_cast<std::uint32_t>(total), static_cast<std::uint32_t>(units), static_cast<std::uint32_t>(rows),
        src_ld / w, src_bs / w, dst_ld / w, dst_bs / w);
  } else {
    copy_blocks_kernel<W, i64><<<grid, kBlock, 0, ctx.stream>>>(s, d, total, units, rows, src_ld / w, src_bs / w,
                                                                 dst_ld / w, dst_bs / w);
  }
  LN_CUDA_CHECK_LAUNCH();
}

// ---- small element-wise ops -----------------------------------------------------------------------------

// y[..., c] += bias[c] in place (bias of any float type).
template <typename T, typename B>
struct BiasAddFn {
  T* y;
  const B* bias;
  i64 c_total;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    const i64 c0 = i0 % c_total;
    float v[VEC];
    load_vec<T, VEC>(y, i0, v);
#pragma unroll
    for (int k = 0; k < VEC; ++k) v[k] = v[k] + to_float(bias[c0 + k]);
    store_vec<T, VEC>(y, i0, v);
  }
};

// dx = unary_grad<OP>(x, y, dy); x and y are only read by the ops whose gradient uses them.
template <UnaryOp OP, typename T>
struct UnaryBackwardFn {
  const T *x, *y, *dy;
  T* dx;
  static constexpr bool kNeedsX = OP == UnaryOp::abs || OP == UnaryOp::log || OP == UnaryOp::square;
  static constexpr bool kNeedsY = OP == UnaryOp::relu || OP == UnaryOp::exp || OP == UnaryOp::sqrt ||
                                  OP == UnaryOp::rsqrt || OP == UnaryOp::sigmoid || OP == UnaryOp::tanh ||
                                  OP == UnaryOp::reciprocal;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    float xv[VEC] = {}, yv[VEC] = {}, d[VEC];
    if constexpr (kNeedsX) load_vec<T, VEC>(x, i0, xv);
    if constexpr (kNeedsY) load_vec<T, VEC>(y, i0, yv);
    load_vec<T, VEC>(dy, i0, d);
#pragma unroll
    for (int k = 0; k < VEC; ++k) d[k] = unary_grad<OP>(xv[k], yv[k], d[k]);
    store_vec<T, VEC>(dx, i0, d);
  }
};

template <UnaryOp OP, typename T>
void launch_unary_backward(const LaunchContext& ctx, const T* x, const T* y, const T* dy, T* dx, i64 n) {
  using F = UnaryBackwardFn<OP, T>;
  const int vec = pick_vec(max_vec_of<T>(), 0,
                           {{F::kNeedsX ? x : nullptr, sizeof(T)}, {F::kNeedsY ? y : nullptr, sizeof(T)},
                            {dy, sizeof(T)}, {dx, sizeof(T)}});
  launch_vec<max_vec_of<T>()>(ctx, n, vec, F{x, y, dy, dx});
}

// y = a[0] * x, a read on the device.
template <typename T>
struct ScaleByFn {
  const T* x;
  T* y;
  const float* a;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    const float s = __ldg(a);
    float v[VEC];
    load_vec<T, VEC>(x, i0, v);
#pragma unroll
    for (int k = 0; k < VEC; ++k) v[k] = s * v[k];
    store_vec<T, VEC>(y, i0, v);
  }
};

// out[i] = scale * s[0].
template <typename S, typename T>
struct BroadcastScalarFn {
  const S* s;
  T* out;
  float scale;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    const float v = scale * to_float(s[0]);
    float o[VEC];
#pragma unroll
    for (int k = 0; k < VEC; ++k) o[k] = v;
    store_vec<T, VEC>(out, i0, o);
  }
};

// y = keep ? x * scale : 0 with the Philox mask of the flat index.
template <typename T>
struct DropoutFn {
  const T* x;
  T* y;
  std::uint64_t seed, stream;
  float p, scale;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    float v[VEC];
    load_vec<T, VEC>(x, i0, v);
#pragma unroll
    for (int k = 0; k < VEC; ++k)
      v[k] = dropout_keep(seed, stream, static_cast<std::uint64_t>(i0 + k), p) ? v[k] * scale : 0.f;
    store_vec<T, VEC>(y, i0, v);
  }
};

// ---- softmax and cross-entropy -----------------------------------------------------------------------------

template <int G>
__device__ __forceinline__ float group_max(float v) {
#pragma unroll
  for (int off = G / 2; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}
template <int G>
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
  for (int off = G / 2; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

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
        if (y < 0 || y >= k_total) {  // not checked on the host (kernels/nn.cpp): poison the loss instead
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

// ---- pooling ---------------------------------------------------------------------------------------------

void max_pool2d_forward(const Tensor& x, const Pool2dParams& p, Tensor& y, Tensor& indices) {
  LaunchContext ctx(x);
  const PoolGeom g = PoolGeom::make(x, y.size(1), y.size(2), p);
  std::int32_t* ip = indices.defined() ? indices.data<std::int32_t>() : nullptr;
  LN_SWITCH_FLOAT(x.dtype(), "max_pool2d_forward", T, {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), g.c, {{xp, sizeof(T)}, {yp, sizeof(T)}});
    launch_vec<max_vec_of<T>()>(ctx, y.numel(), vec, MaxPoolForwardFn<T>{xp, yp, ip, g});
  });
}

void max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Pool2dParams& p, Tensor& dx) {
  LaunchContext ctx(dy);
  const PoolGeom g = PoolGeom::make(dx, dy.size(1), dy.size(2), p);
  const std::int32_t* ip = indices.data<std::int32_t>();
  LN_SWITCH_FLOAT(dy.dtype(), "max_pool2d_backward", T, {
    const T* dyp = dy.data<T>();
    T* dxp = dx.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), g.c, {{dyp, sizeof(T)}, {dxp, sizeof(T)}});
    launch_vec<max_vec_of<T>()>(ctx, dx.numel(), vec, MaxPoolBackwardFn<T>{dyp, ip, dxp, g});
  });
}

void avg_pool2d_forward(const Tensor& x, const Pool2dParams& p, Tensor& y) {
  LaunchContext ctx(x);
  const PoolGeom g = PoolGeom::make(x, y.size(1), y.size(2), p);
  LN_SWITCH_FLOAT(x.dtype(), "avg_pool2d_forward", T, {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), g.c, {{xp, sizeof(T)}, {yp, sizeof(T)}});
    launch_vec<max_vec_of<T>()>(ctx, y.numel(), vec, AvgPoolForwardFn<T>{xp, yp, g});
  });
}

void avg_pool2d_backward(const Tensor& dy, const Pool2dParams& p, Tensor& dx) {
  LaunchContext ctx(dy);
  const PoolGeom g = PoolGeom::make(dx, dy.size(1), dy.size(2), p);
  LN_SWITCH_FLOAT(dy.dtype(), "avg_pool2d_backward", T, {
    const T* dyp = dy.data<T>();
    T* dxp = dx.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), g.c, {{dyp, sizeof(T)}, {dxp, sizeof(T)}});
    launch_vec<max_vec_of<T>()>(ctx, dx.numel(), vec, AvgPoolBackwardFn<T>{dyp, dxp, g});
  });
}

void global_avg_pool_backward(const Tensor& dy, Tensor& dx) {
  LaunchContext ctx(dy);
  const i64 c = dx.size(3);
  const i64 hw = dx.size(1) * dx.size(2);
  if (c == 0 || hw == 0) return;
  LN_SWITCH_FLOAT(dy.dtype(), "global_avg_pool_backward", T, {
    const T* dyp = dy.data<T>();
    T* dxp = dx.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), c, {{dyp, sizeof(T)}, {dxp, sizeof(T)}});
    launch_vec<max_vec_of<T>()>(ctx, dx.numel(), vec,
                                GlobalAvgPoolBackwardFn<T>{dyp, dxp, c, hw * c, static_cast<float>(hw)});
  });
}

// ---- block copies ----------------------------------------------------------------------------------------

void copy_blocks(const Tensor& src, std::int64_t src_off, std::int64_t src_ld, std::int64_t src_bs, Tensor& dst,
                 std::int64_t dst_off, std::int64_t dst_ld, std::int64_t dst_bs, std::int64_t batch,
                 std::int64_t rows, std::int64_t cols) {
  LaunchContext ctx(src);
  if (batch <= 0 || rows <= 0 || cols <= 0) return;
  const i64 es = static_cast<i64>(src.element_size());
  // Strides that never matter are zeroed so that they do not block the wide path.
  if (rows == 1) src_ld = dst_ld = 0;
  if (batch == 1) src_bs = dst_bs = 0;
  const char* s = static_cast<const char*>(src.data_ptr()) + src_off * es;
  char* d = static_cast<char*>(dst.data_ptr()) + dst_off * es;
  const i64 s_ld = src_ld * es, s_bs = src_bs * es, d_ld = dst_ld * es, d_bs = dst_bs * es, col_bytes = cols * es;
  // The widest word (16 bytes down to 1) that divides every byte offset and stride.
  const auto fits = [&](i64 w) {
    return reinterpret_cast<std::uintptr_t>(s) % w == 0 && reinterpret_cast<std::uintptr_t>(d) % w == 0 &&
           s_ld % w == 0 && s_bs % w == 0 && d_ld % w == 0 && d_bs % w == 0 && col_bytes % w == 0;
  };
  if (fits(16)) launch_copy_blocks<uint4>(ctx, s, d, s_ld, s_bs, d_ld, d_bs, batch, rows, col_bytes);
  else if (fits(8)) launch_copy_blocks<uint2>(ctx, s, d, s_ld, s_bs, d_ld, d_bs, batch, rows, col_bytes);
  else if (fits(4)) launch_copy_blocks<std::uint32_t>(ctx, s, d, s_ld, s_bs, d_ld, d_bs, batch, rows, col_bytes);
  else if (fits(2)) launch_copy_blocks<std::uint16_t>(ctx, s, d, s_ld, s_bs, d_ld, d_bs, batch, rows, col_bytes);
  else launch_copy_blocks<std::uint8_t>(ctx, s, d, s_ld, s_bs, d_ld, d_bs, batch, rows, col_bytes);
}

// ---- small element-wise ops ------------------------------------------------------------------------------

void bias_add(Tensor& y, const Tensor& bias) {
  LaunchContext ctx(y);
  const i64 c = y.size(-1);
  if (c == 0) return;
  LN_SWITCH_FLOAT(y.dtype(), "bias_add", T, {
    T* yp = y.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), c, {{yp, sizeof(T)}});
    LN_SWITCH_FLOAT(bias.dtype(), "bias_add", B, {
      launch_vec<max_vec_of<T>()>(ctx, y.numel(), vec, BiasAddFn<T, B>{yp, bias.data<B>(), c});
    });
  });
}

void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx) {
  LaunchContext ctx(dy);
  const i64 n = dy.numel();
  LN_SWITCH_FLOAT(dy.dtype(), "unary_backward", T, {
    const T* xp = x.defined() ? x.data<T>() : nullptr;
    const T* yp = y.defined() ? y.data<T>() : nullptr;
    const T* gp = dy.data<T>();
    T* dp = dx.data<T>();
    switch (op) {
      case UnaryOp::neg: launch_unary_backward<UnaryOp::neg>(ctx, xp, yp, gp, dp, n); break;
      case UnaryOp::abs: launch_unary_backward<UnaryOp::abs>(ctx, xp, yp, gp, dp, n); break;
      case UnaryOp::relu: launch_unary_backward<UnaryOp::relu>(ctx, xp, yp, gp, dp, n); break;
      case UnaryOp::exp: launch_unary_backward<UnaryOp::exp>(ctx, xp, yp, gp, dp, n); break;
      case UnaryOp::log: launch_unary_backward<UnaryOp::log>(ctx, xp, yp, gp, dp, n); break;
      case UnaryOp::sqrt: launch_unary_backward<UnaryOp::sqrt>(ctx, xp, yp, gp, dp, n); break;
      case UnaryOp::rsqrt: launch_unary_backward<UnaryOp::rsqrt>(ctx, xp, yp, gp, dp, n); break;
      case UnaryOp::sigmoid: launch_unary_backward<UnaryOp::sigmoid>(ctx, xp, yp, gp, dp, n); break;
      case UnaryOp::tanh: launch_unary_backward<UnaryOp::tanh>(ctx, xp, yp, gp, dp, n); break;
      case UnaryOp::square: launch_unary_backward<UnaryOp::square>(ctx, xp, yp, gp, dp, n); break;
      case UnaryOp::reciprocal: launch_unary_backward<UnaryOp::reciprocal>(ctx, xp, yp, gp, dp, n); break;
    }
  });
}

void scale_by(const Tensor& x, const Tensor& a, Tensor& y) {
  LaunchContext ctx(x);
  const float* ap = a.data<float>();
  LN_SWITCH_FLOAT(x.dtype(), "scale_by", T, {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), 0, {{xp, sizeof(T)}, {yp, sizeof(T)}});
    launch_vec<max_vec_of<T>()>(ctx, x.numel(), vec, ScaleByFn<T>{xp, yp, ap});
  });
}

void broadcast_scalar(const Tensor& s, float scale, Tensor& out) {
  LaunchContext ctx(out);
  LN_SWITCH_FLOAT(out.dtype(), "broadcast_scalar", T, {
    T* op = out.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), 0, {{op, sizeof(T)}});
    LN_SWITCH_FLOAT(s.dtype(), "broadcast_scalar", S, {
      launch_vec<max_vec_of<T>()>(ctx, out.numel(), vec, BroadcastScalarFn<S, T>{s.data<S>(), op, scale});
    });
  });
}

void dropout(const Tensor& x, float p, std::uint64_t seed, std::uint64_t stream, Tensor& y) {
  LaunchContext ctx(x);
  if (x.numel() == 0) return;
  if (p <= 0.f) {
    if (x.data_ptr() != y.data_ptr())
      LN_CUDA_CHECK(cudaMemcpyAsync(y.data_ptr(), x.data_ptr(), x.nbytes(), cudaMemcpyDeviceToDevice, ctx.stream));
    return;
  }
  if (p >= 1.f) {
    LN_CUDA_CHECK(cudaMemsetAsync(y.data_ptr(), 0, y.nbytes(), ctx.stream));  // +0.0 in every float type
    count_launches();
    return;
  }
  const float scale = 1.f / (1.f - p);
  LN_SWITCH_FLOAT(x.dtype(), "dropout", T, {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), 0, {{xp, sizeof(T)}, {yp, sizeof(T)}});
    launch_vec<max_vec_of<T>()>(ctx, x.numel(), vec, DropoutFn<T>{xp, yp, seed, stream, p, scale});
  });
}

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
