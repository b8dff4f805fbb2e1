// CUDA optimizer kernels. Per parameter: one fused grid-stride pass. Multi-tensor (what optim/ uses):
// the list is packed into tables that travel in the kernels' parameter space, one block per chunk of
// kChunk elements of one tensor, so a whole step is a few launches with no host-to-device copy (and
// can be captured in a CUDA graph). Gradient statistics reduce by the shared fixed shuffle trees
// (kernels/cuda/launch.cuh) into per-block partials and a fixed-order final pass (deterministic).
#include "kernels/backend.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/type_switch.h"

namespace livernet::kernels::cuda {

namespace {

__global__ void sgd_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ buf, std::int64_t n,
                           SgdHyper h, SgdParamHyper ph) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    float dummy = 0.f;
    float pi = p[i];
    sgd_step(pi, g[i], buf ? buf[i] : dummy, h, ph);
    p[i] = pi;
  }
}

__global__ void adam_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                            float* __restrict__ v, std::int64_t n, AdamHyper h, float weight_decay) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    float pi = p[i], mi = m[i], vi = v[i];
    adam_step(pi, g[i], mi, vi, h, weight_decay);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

// ---- gradient statistics ----------------------------------------------------------------------------

// Thread 0 writes (sum of s, max of bad) over the block to *out, by the fixed trees of block_reduce.
__device__ void block_stats(float s, float bad, float2* out) {
  const float2 v = block_reduce(make_float2(s, bad), SumMaxOp{}, make_float2(0.f, 0.f));
  if (threadIdx.x == 0) *out = v;
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
  block_stats(s, bad, partial + blockIdx.x);
}

// out = [sum of the partial sums, max of the flags]. Thread k takes partials k, k + blockDim, ... and
// the block combines the threads in a fixed tree: the same value on every run. The sum is f64 so that
// many partials add up without loss.
__global__ void __launch_bounds__(kBlock) grad_stats_final(const float2* __restrict__ partial, int nb,
                                                           float* __restrict__ out) {
  double s = 0;
  float bad = 0.f;
  for (int k = threadIdx.x; k < nb; k += blockDim.x) {
    s += partial[k].x;
    bad = fmaxf(bad, partial[k].y);
  }
  const double2 v = block_reduce(make_double2(s, bad), SumMaxOp{}, make_double2(0.0, 0.0));
  if (threadIdx.x == 0) {
    out[0] = static_cast<float>(v.x);
    out[1] = static_cast<float>(v.y);
  }
}

void launch_stats_final(const LaunchContext& ctx, const float2* partial, std::int64_t nb, Tensor& out) {
  grad_stats_final<<<1, kBlock, 0, ctx.stream>>>(partial, static_cast<int>(nb), out.data<float>());
  LN_CUDA_CHECK_LAUNCH();
}

// ---- multi-tensor tables ------------------------------------------------------------------------------

constexpr int kChunk = 65536;       // elements per block: 64 iterations of a 256-thread block of float4s
constexpr int kTableBlocks = 320;   // blocks per launch
// Kernel parameters are limited to 4 KiB on toolkits before 12.1; a table leaves this much of it to
// the kernel's other arguments (hyper-parameters, found_inf, grad_mul; checked below).
constexpr std::size_t kOtherArgs = 128;

// One launch's worth of tensors: kDepth pointers per tensor (0: the parameter or the tensor to reduce,
// 1: the gradient, then state), its element count and per-tensor settings; block b works on chunk
// block_chunk[b] (elements [chunk * kChunk, ...)) of tensor block_tensor[b].
template <int kDepth, int kCapacity, typename Extra>
struct TensorTable {
  static constexpr int kTensors = kCapacity;
  void* ptr[kDepth][kCapacity];
  std::int64_t n[kCapacity];
  std::int32_t block_chunk[kTableBlocks];
  Extra extra[kCapacity];
  std::uint8_t block_tensor[kTableBlocks];
};

// As many tensors as fit beside the block table (at most 255: block_tensor is a byte).
constexpr int table_capacity(int depth, std::size_t extra) {
  const std::size_t per_tensor = depth * sizeof(void*) + sizeof(std::int64_t) + extra;
  const std::size_t fit = (4096 - kOtherArgs - kTableBlocks * (sizeof(std::int32_t) + 1)) / per_tensor;
  return static_cast<int>(fit < 255 ? fit : 255);
}

template <int kDepth, typename Extra>
using TableFor = TensorTable<kDepth, table_capacity(kDepth, sizeof(Extra)), Extra>;
using AdamTable = TableFor<4, float>;  // weight decay per tensor
template <int kDepth>
using SgdTable = TableFor<kDepth, SgdParamHyper>;  // depth 2 without momentum, 3 with
using StatsTable = TableFor<1, DType>;

static_assert(sizeof(AdamTable) + sizeof(AdamHyper) + 2 * sizeof(float*) <= 4096, "Adam table over 4 KiB");
static_assert(sizeof(SgdTable<3>) + sizeof(SgdHyper) + 2 * sizeof(float*) <= 4096, "SGD table over 4 KiB");
static_assert(sizeof(SgdTable<2>) + sizeof(SgdHyper) + 2 * sizeof(float*) <= 4096, "SGD table over 4 KiB");
static_assert(sizeof(StatsTable) + sizeof(float2*) <= 4096, "statistics table over 4 KiB");

// Packs the non-empty tensors of `list` into tables: fill(table, slot, i) stores entry i's pointers and
// settings in `slot`; launch(table, blocks) runs one table. A tensor whose chunks do not all fit in a
// table continues in the next one (filled again there).
template <typename Table, typename Fill, typename Launch>
void for_each_table(const std::vector<Tensor>& list, Fill fill, Launch launch) {
  Table t{};
  int tensors = 0, blocks = 0;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::int64_t n = list[i].numel();
    int slot = -1;
    for (std::int64_t c = 0; c * kChunk < n; ++c) {
      if (slot < 0) {
        slot = tensors++;
        t.n[slot] = n;
        fill(t, slot, i);
      }
      t.block_tensor[blocks] = static_cast<std::uint8_t>(slot);
      t.block_chunk[blocks] = static_cast<std::int32_t>(c);
      ++blocks;
      const bool last_chunk = (c + 1) * kChunk >= n;
      if (blocks == kTableBlocks || (last_chunk && tensors == Table::kTensors)) {
        launch(t, blocks);
        tensors = blocks = 0;
        slot = -1;
      }
    }
  }
  if (blocks > 0) launch(t, blocks);
}

std::int64_t chunks_of(const std::vector<Tensor>& list) {
  std::int64_t chunks = 0;
  for (const Tensor& t : list) chunks += (t.numel() + kChunk - 1) / kChunk;
  return chunks;
}

// This block's chunk: elements [begin, begin + len) of the tensor in `slot`.
struct BlockChunk {
  int slot;
  std::int64_t begin;
  int len;
};

template <typename Table>
__device__ BlockChunk chunk_of_block(const Table& t) {
  const int slot = t.block_tensor[blockIdx.x];
  const std::int64_t begin = static_cast<std::int64_t>(t.block_chunk[blockIdx.x]) * kChunk;
  return {slot, begin, static_cast<int>(min(static_cast<std::int64_t>(kChunk), t.n[slot] - begin))};
}

// Calls op(x) on every element of this block's chunk, x[d] being the element of the table's tensor d
// (f32); writes back all but the gradient (d == 1). With every pointer 16-byte aligned (chunks start at
// multiples of kChunk, so the tensors' bases decide) four elements move per memory instruction, the
// tail element by element.
template <int kDepth, int kCapacity, typename Extra, typename Op>
__device__ void update_chunk(const TensorTable<kDepth, kCapacity, Extra>& t, Op op) {
  const BlockChunk c = chunk_of_block(t);
  float* ptr[kDepth];
  bool aligned = true;
#pragma unroll
  for (int d = 0; d < kDepth; ++d) {
    ptr[d] = static_cast<float*>(t.ptr[d][c.slot]) + c.begin;
    aligned = aligned && reinterpret_cast<std::uintptr_t>(ptr[d]) % 16 == 0;
  }
  int done = 0;
  if (aligned) {
    using V = Vec<float, 4>;
    const int nvec = c.len / 4;
    for (int k = threadIdx.x; k < nvec; k += blockDim.x) {
      V x[kDepth];
#pragma unroll
      for (int d = 0; d < kDepth; ++d) x[d] = reinterpret_cast<const V*>(ptr[d])[k];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        float e[kDepth];
#pragma unroll
        for (int d = 0; d < kDepth; ++d) e[d] = x[d].v[j];
        op(e);
#pragma unroll
        for (int d = 0; d < kDepth; ++d) x[d].v[j] = e[d];
      }
#pragma unroll
      for (int d = 0; d < kDepth; ++d)
        if (d != 1) reinterpret_cast<V*>(ptr[d])[k] = x[d];
    }
    done = nvec * 4;
  }
  for (int k = done + threadIdx.x; k < c.len; k += blockDim.x) {
    float e[kDepth];
#pragma unroll
    for (int d = 0; d < kDepth; ++d) e[d] = ptr[d][k];
    op(e);
#pragma unroll
    for (int d = 0; d < kDepth; ++d)
      if (d != 1) ptr[d][k] = e[d];
  }
}

// found_inf / grad_mul as the kernels read them: nullptr when absent.
const float* optional_scalar(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }

template <int kDepth>
__global__ void __launch_bounds__(kBlock) sgd_multi_kernel(const __grid_constant__ SgdTable<kDepth> t, SgdHyper h,
                                                           const float* __restrict__ found_inf,
                                                           const float* __restrict__ grad_mul) {
  if (found_inf && *found_inf != 0.f) return;
  const float mul = grad_mul ? *grad_mul : 1.f;
  const SgdParamHyper ph = t.extra[t.block_tensor[blockIdx.x]];
  update_chunk(t, [&](float(&e)[kDepth]) {
    if constexpr (kDepth == 3) {
      sgd_step(e[0], mul_rn(e[1], mul), e[2], h, ph);
    } else {
      float no_buffer = 0.f;  // momentum == 0: never read
      sgd_step(e[0], mul_rn(e[1], mul), no_buffer, h, ph);
    }
  });
}

__global__ void __launch_bounds__(kBlock) adam_multi_kernel(const __grid_constant__ AdamTable t, AdamHyper h,
                                                            const float* __restrict__ found_inf,
                                                            const float* __restrict__ grad_mul) {
  if (found_inf && *found_inf != 0.f) return;
  const float mul = grad_mul ? *grad_mul : 1.f;
  const float weight_decay = t.extra[t.block_tensor[blockIdx.x]];
  update_chunk(t, [&](float(&e)[4]) { adam_step(e[0], mul_rn(e[1], mul), e[2], e[3], h, weight_decay); });
}

template <int kDepth>
void sgd_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& bufs,
               const std::vector<SgdParamHyper>& per_param, const SgdHyper& h, const float* found_inf,
               const float* grad_mul) {
  LaunchContext ctx(params[0]);
  for_each_table<SgdTable<kDepth>>(
      params,
      [&](SgdTable<kDepth>& t, int slot, std::size_t i) {
        t.ptr[0][slot] = params[i].data_ptr();
        t.ptr[1][slot] = grads[i].data_ptr();
        if constexpr (kDepth == 3) t.ptr[2][slot] = bufs[i].data_ptr();
        t.extra[slot] = per_param[i];
      },
      [&](const SgdTable<kDepth>& t, int blocks) {
        sgd_multi_kernel<kDepth><<<blocks, kBlock, 0, ctx.stream>>>(t, h, found_inf, grad_mul);
        LN_CUDA_CHECK_LAUNCH();
      });
}

// Reduces this block's chunk of tensor x (T) into (s, bad), 16 bytes per memory instruction where aligned.
template <typename T>
__device__ void stats_chunk(const T* __restrict__ x, int len, float& s, float& bad) {
  constexpr int kVec = 16 / sizeof(T);
  const auto add = [&](float v) {
    if (!isfinite(v)) bad = 1.f;
    s = fmaf(v, v, s);
  };
  int done = 0;
  if (reinterpret_cast<std::uintptr_t>(x) % 16 == 0) {
    using V = Vec<T, kVec>;
    const int nvec = len / kVec;
    for (int k = threadIdx.x; k < nvec; k += blockDim.x) {
      const V xv = reinterpret_cast<const V*>(x)[k];
#pragma unroll
      for (int j = 0; j < kVec; ++j) add(to_float(xv.v[j]));
    }
    done = nvec * kVec;
  }
  for (int k = done + threadIdx.x; k < len; k += blockDim.x) add(to_float(x[k]));
}

__global__ void __launch_bounds__(kBlock) grad_stats_multi_partial(const __grid_constant__ StatsTable t,
                                                                   float2* __restrict__ partial) {
  const BlockChunk c = chunk_of_block(t);
  const void* x = t.ptr[0][c.slot];
  float s = 0.f, bad = 0.f;
  switch (t.extra[c.slot]) {
    case DType::bf16: stats_chunk(static_cast<const bf16*>(x) + c.begin, c.len, s, bad); break;
    case DType::f16: stats_chunk(static_cast<const f16*>(x) + c.begin, c.len, s, bad); break;
    default: stats_chunk(static_cast<const float*>(x) + c.begin, c.len, s, bad); break;
  }
  block_stats(s, bad, partial + blockIdx.x);
}

}  // namespace

void sgd_update(Tensor& param, const Tensor& grad, Tensor& buf, const SgdHyper& h, const SgdParamHyper& ph) {
  LaunchContext ctx(param);
  const std::int64_t n = param.numel();
  sgd_kernel<<<grid_for(n, ctx.device), kBlock, 0, ctx.stream>>>(
      param.data<float>(), grad.data<float>(), h.momentum != 0.f ? buf.data<float>() : nullptr, n, h, ph);
  LN_CUDA_CHECK_LAUNCH();
}

void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamHyper& h, float weight_decay) {
  LaunchContext ctx(param);
  const std::int64_t n = param.numel();
  adam_kernel<<<grid_for(n, ctx.device), kBlock, 0, ctx.stream>>>(param.data<float>(), grad.data<float>(),
                                                                  m.data<float>(), v.data<float>(), n, h, weight_decay);
  LN_CUDA_CHECK_LAUNCH();
}

void sgd_update_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_bufs, const std::vector<SgdParamHyper>& per_param,
                      const SgdHyper& h, const Tensor& found_inf, const Tensor& grad_mul) {
  if (h.momentum != 0.f) {
    sgd_multi<3>(params, grads, momentum_bufs, per_param, h, optional_scalar(found_inf), optional_scalar(grad_mul));
  } else {
    sgd_multi<2>(params, grads, momentum_bufs, per_param, h, optional_scalar(found_inf), optional_scalar(grad_mul));
  }
}

void adam_update_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& m,
                       const std::vector<Tensor>& v, const std::vector<float>& weight_decays, const AdamHyper& h,
                       const Tensor& found_inf, const Tensor& grad_mul) {
  LaunchContext ctx(params[0]);
  const float* skip = optional_scalar(found_inf);
  const float* mul = optional_scalar(grad_mul);
  for_each_table<AdamTable>(
      params,
      [&](AdamTable& t, int slot, std::size_t i) {
        t.ptr[0][slot] = params[i].data_ptr();
        t.ptr[1][slot] = grads[i].data_ptr();
        t.ptr[2][slot] = m[i].data_ptr();
        t.ptr[3][slot] = v[i].data_ptr();
        t.extra[slot] = weight_decays[i];
      },
      [&](const AdamTable& t, int blocks) {
        adam_multi_kernel<<<blocks, kBlock, 0, ctx.stream>>>(t, h, skip, mul);
        LN_CUDA_CHECK_LAUNCH();
      });
}

void grad_stats(const Tensor& x, Tensor& out) {
  LaunchContext ctx(x);
  const std::int64_t n = x.numel();
  const unsigned blocks = std::min<unsigned>(grid_for(n, ctx.device), 1024);
  Tensor partial = Tensor::empty(Shape{static_cast<std::int64_t>(blocks) * 2}, DType::f32, x.device());
  float2* part = reinterpret_cast<float2*>(partial.data<float>());
  LN_SWITCH_FLOAT(x.dtype(), "grad_stats", T, { grad_stats_partial<<<blocks, kBlock, 0, ctx.stream>>>(x.data<T>(), n, part); });
  LN_CUDA_CHECK_LAUNCH();
  launch_stats_final(ctx, part, blocks, out);
}

void grad_stats_multi(const std::vector<Tensor>& xs, Tensor& out) {
  LaunchContext ctx(out);
  const std::int64_t chunks = chunks_of(xs);
  Tensor partial = Tensor::empty(Shape{chunks * 2}, DType::f32, out.device());
  float2* part = reinterpret_cast<float2*>(partial.data<float>());
  std::int64_t written = 0;
  for_each_table<StatsTable>(
      xs,
      [&](StatsTable& t, int slot, std::size_t i) {
        t.ptr[0][slot] = xs[i].data_ptr();
        t.extra[slot] = xs[i].dtype();
      },
      [&](const StatsTable& t, int blocks) {
        grad_stats_multi_partial<<<blocks, kBlock, 0, ctx.stream>>>(t, part + written);
        LN_CUDA_CHECK_LAUNCH();
        written += blocks;
      });
  launch_stats_final(ctx, part, chunks, out);
}

}  // namespace livernet::kernels::cuda
