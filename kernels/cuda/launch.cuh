// The launchers and reductions the CUDA op files share (kernels/cuda/{norm,pool,loss,copy,elementwise}.cu):
// vectorised element-wise launches whose functors do their own loads and stores, and deterministic
// block and global sums (fixed partitions and combination order, no float atomics).
#pragma once

#include <cstdint>
#include <initializer_list>

#include "kernels/cuda/common.cuh"

namespace livernet::kernels::cuda {

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
inline int pick_vec(int max_vec, i64 inner, std::initializer_list<VecPtr> ptrs) {
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
__device__ inline float2 block_sum2(float2 v) {
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

// An optional f32 tensor's data: nullptr when it is undefined (no gamma, no class weights, ...).
inline const float* f32_or_null(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }
inline float* f32_or_null(Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }

}  // namespace livernet::kernels::cuda
