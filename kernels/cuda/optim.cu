// CUDA optimizer kernels: one fused grid-stride pass per parameter tensor; grad_stats reduces with
// warp shuffles into per-block partials and a fixed-order final pass (deterministic).
#include "kernels/backend.h"
#include "kernels/cuda/common.cuh"
#include "kernels/type_switch.h"

namespace livernet::kernels::cuda {

namespace {

__global__ void sgd_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ buf, std::int64_t n,
                           SgdHyper h) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    float dummy = 0.f;
    float pi = p[i];
    sgd_step(pi, g[i], buf ? buf[i] : dummy, h);
    p[i] = pi;
  }
}

__global__ void adam_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                            float* __restrict__ v, std::int64_t n, AdamHyper h) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    float pi = p[i], mi = m[i], vi = v[i];
    adam_step(pi, g[i], mi, vi, h);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

template <typename T>
__global__ void grad_stats_partial(const T* __restrict__ x, std::int64_t n, float2* __restrict__ partial) {
  float s = 0.f, bad = 0.f;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float v = to_float(x[i]);
    if (!isfinite(v)) bad = 1.f;
    s += v * v;
  }
  for (int off = 16; off > 0; off >>= 1) {
    s += __shfl_xor_sync(0xffffffffu, s, off);
    bad = fmaxf(bad, __shfl_xor_sync(0xffffffffu, bad, off));
  }
  __shared__ float2 warp[32];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  if (lane == 0) warp[w] = make_float2(s, bad);
  __syncthreads();
  if (threadIdx.x == 0) {
    float2 acc = make_float2(0.f, 0.f);
    for (int k = 0; k < static_cast<int>(blockDim.x + 31) / 32; ++k) {
      acc.x += warp[k].x;
      acc.y = fmaxf(acc.y, warp[k].y);
    }
    partial[blockIdx.x] = acc;
  }
}

__global__ void grad_stats_final(const float2* __restrict__ partial, int nb, float* __restrict__ out) {
  if (threadIdx.x != 0) return;
  float s = 0.f, bad = 0.f;
  for (int k = 0; k < nb; ++k) {
    s += partial[k].x;
    bad = fmaxf(bad, partial[k].y);
  }
  out[0] = s;
  out[1] = bad;
}

}  // namespace

void sgd_update(Tensor& param, const Tensor& grad, Tensor& buf, const SgdHyper& h) {
  LaunchContext ctx(param);
  const std::int64_t n = param.numel();
  sgd_kernel<<<grid_for(n, ctx.device), kBlock, 0, ctx.stream>>>(param.data<float>(), grad.data<float>(),
                                                                 h.momentum != 0.f ? buf.data<float>() : nullptr, n, h);
  LN_CUDA_CHECK_LAUNCH();
}

void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamHyper& h) {
  LaunchContext ctx(param);
  const std::int64_t n = param.numel();
  adam_kernel<<<grid_for(n, ctx.device), kBlock, 0, ctx.stream>>>(param.data<float>(), grad.data<float>(),
                                                                  m.data<float>(), v.data<float>(), n, h);
  LN_CUDA_CHECK_LAUNCH();
}

void grad_stats(const Tensor& x, Tensor& out) {
  LaunchContext ctx(x);
  const std::int64_t n = x.numel();
  const unsigned blocks = std::min<unsigned>(grid_for(n, ctx.device), 1024);
  Tensor partial = Tensor::empty(Shape{static_cast<std::int64_t>(blocks) * 2}, DType::f32, x.device());
  LN_SWITCH_FLOAT(x.dtype(), "grad_stats", T, {
    grad_stats_partial<<<blocks, kBlock, 0, ctx.stream>>>(x.data<T>(), n, reinterpret_cast<float2*>(partial.data<float>()));
  });
  LN_CUDA_CHECK_LAUNCH();
  grad_stats_final<<<1, 32, 0, ctx.stream>>>(reinterpret_cast<const float2*>(partial.data<float>()), static_cast<int>(blocks),
                                             out.data<float>());
  LN_CUDA_CHECK_LAUNCH();
}

}  // namespace livernet::kernels::cuda
