// The launchers and reductions every CUDA op file shares (kernels/cuda/*.cu): a grid-stride index launch,
// vectorised element-wise launches whose functors do their own loads and stores, warp and block
// reductions by fixed shuffle trees, and deterministic global sums (fixed partitions and combination
// order, no float atomics).
#pragma once

#include <cstdint>
#include <initializer_list>

#include "kernels/cuda/common.cuh"

namespace livernet::kernels::cuda {

using i64 = std::int64_t;
// ---- element-wise launches -------------------------------------------------------------------------------

// Calls f(i) for every i in [0, n) with a grid-stride loop (ops whose elements are not laid out for vector
// access: fills, casts, random numbers).
template <typename F>
__global__ void index_kernel(i64 n, F f) {
  for (i64 i = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; i < n; i += static_cast<i64>(gridDim.x) * blockDim.x)
    f(i);
}

template <typename F>
void launch_index(const LaunchContext& ctx, i64 n, F f) {
  index_kernel<<<grid_for(n, ctx.device), kBlock, 0, ctx.stream>>>(n, f);
  LN_CUDA_CHECK_LAUNCH();
}


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

// ---- warp and block reductions: the one set every CUDA op file uses ------------------------------------

struct SumOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
  __device__ __forceinline__ float2 operator()(float2 a, float2 b) const { return make_float2(a.x + b.x, a.y + b.y); }
};
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
// (sum, flag): a sum of squares with a max of "any non-finite" flags (gradient statistics).
struct SumMaxOp {
  __device__ __forceinline__ float2 operator()(float2 a, float2 b) const { return make_float2(a.x + b.x, fmaxf(a.y, b.y)); }
  __device__ __forceinline__ double2 operator()(double2 a, double2 b) const { return make_double2(a.x + b.x, fmax(a.y, b.y)); }
};

__device__ __forceinline__ float shfl_xor(float v, int off) { return __shfl_xor_sync(0xffffffffu, v, off); }
__device__ __forceinline__ double shfl_xor(double v, int off) { return __shfl_xor_sync(0xffffffffu, v, off); }
__device__ __forceinline__ float2 shfl_xor(float2 v, int off) { return make_float2(shfl_xor(v.x, off), shfl_xor(v.y, off)); }
__device__ __forceinline__ double2 shfl_xor(double2 v, int off) {
  return make_double2(shfl_xor(v.x, off), shfl_xor(v.y, off));
}

// v combined over each group of G consecutive lanes (G a power of two, at most 32) by a fixed xor-shuffle
// tree: every lane of a group gets the group's result, the same on every run. All 32 lanes must call it.
template <int G = 32, typename T, typename Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
  for (int off = G / 2; off > 0; off >>= 1) v = op(v, shfl_xor(v, off));
  return v;
}

// v combined over the block (blockDim.x a multiple of 32): a tree per warp, then warp 0 combines the warps'
// results by the same tree (identity for the lanes past the last warp). The result is valid in warp 0
// (thread 0 writes it). Call once per kernel: the shared buffer is not re-synchronised for reuse.
template <typename T, typename Op>
__device__ inline T block_reduce(T v, Op op, T identity) {
  __shared__ T warp_partials[32];
  v = warp_reduce(v, op);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_partials[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int nwarps = static_cast<int>(blockDim.x >> 5);
    v = lane < nwarps ? warp_partials[lane] : identity;
    v = warp_reduce(v, op);
  }
  return v;
}

// ---- deterministic global sums ----------------------------------------------------------------------------

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
  acc = block_reduce(acc, SumOp{}, make_float2(0.f, 0.f));
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
  acc = block_reduce(acc, SumOp{}, make_float2(0.f, 0.f));
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
