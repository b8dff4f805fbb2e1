// CUDA element-wise, random and reduction kernels on the shared launchers and reductions of
// kernels/cuda/launch.cuh: grid-stride loops, 16-byte vector loads and stores where the pointers allow,
// f32 arithmetic for every float type. At the end, the element-wise ops of the
// network layers: bias add, the backward of unary activations, per-row scaling, scalar broadcast and
// dropout (Philox: the same mask as the CPU backend).
#include <cfloat>

#include "core/philox.h"
#include "kernels/backend.h"
#include "kernels/convert_math.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/nn_math.h"
#include "kernels/type_switch.h"

namespace livernet::kernels::cuda {

namespace {

// y[i] = f(a[i], b[i]) (NIN == 2) or f(a[i], 0) (NIN == 1), whole vectors at a time (launch_vec).
template <int NIN, typename T, typename F>
struct MapFn {
  const T* a;
  const T* b;
  T* y;  // may alias a or b
  F f;
  template <int VEC>
  __device__ __forceinline__ void apply(i64 i) const {
    float va[VEC], vb[VEC], out[VEC];
    load_vec<T, VEC>(a, i, va);
    if constexpr (NIN == 2) load_vec<T, VEC>(b, i, vb);
#pragma unroll
    for (int k = 0; k < VEC; ++k) out[k] = f(va[k], NIN == 2 ? vb[k] : 0.f);
    store_vec<T, VEC>(y, i, out);
  }
};

template <int NIN, typename T, typename F>
void launch_map(const LaunchContext& ctx, i64 n, const T* a, const T* b, T* y, F f) {
  const int vec = pick_vec(max_vec_of<T>(), 0, {{a, sizeof(T)}, {b, sizeof(T)}, {y, sizeof(T)}});
  launch_vec<max_vec_of<T>()>(ctx, n, vec, MapFn<NIN, T, F>{a, b, y, f});
}

template <UnaryOp OP>
struct UnaryFn {
  __device__ float operator()(float x, float) const { return unary_apply<OP>(x); }
};
template <BinaryOp OP>
struct BinaryFn {
  __device__ float operator()(float a, float b) const { return binary_apply<OP>(a, b); }
};
struct AxpbyFn {
  float alpha, beta;
  __device__ float operator()(float x, float y) const { return axpby_f(alpha, x, beta, y); }
};

}  // namespace

void fill(Tensor& t, double value) {
  LaunchContext ctx(t);
  LN_SWITCH_ALL(t.dtype(), "fill", T, {
    T* p = t.data<T>();
    const T v = convert<T>(value);
    launch_index(ctx, t.numel(), [=] __device__(std::int64_t i) { p[i] = v; });
  });
}

void cast(const Tensor& src, Tensor& dst) {
  LaunchContext ctx(src);
  LN_SWITCH_ALL(src.dtype(), "cast", S, {
    const S* s = src.data<S>();
    LN_SWITCH_ALL(dst.dtype(), "cast", D, {
      D* d = dst.data<D>();
      launch_index(ctx, src.numel(), [=] __device__(std::int64_t i) { d[i] = convert<D>(s[i]); });
    });
  });
}

void arange_fill(Tensor& t, double start, double step) {
  LaunchContext ctx(t);
  LN_SWITCH_ALL(t.dtype(), "arange", T, {
    T* p = t.data<T>();
    launch_index(ctx, t.numel(), [=] __device__(std::int64_t i) {
      p[i] = convert<T>(start + static_cast<double>(i) * step);
    });
  });
}

void random_fill(Tensor& t, RandomDist dist, std::uint64_t seed, std::uint64_t stream, float a, float b) {
  LaunchContext ctx(t);
  LN_SWITCH_FLOAT(t.dtype(), "random_fill", T, {
    T* p = t.data<T>();
    if (dist == RandomDist::uniform) {
      launch_index(ctx, t.numel(), [=] __device__(std::int64_t i) {
        p[i] = from_float<T>(philox_uniform_at(seed, stream, static_cast<std::uint64_t>(i), a, b));
      });
    } else {
      launch_index(ctx, t.numel(), [=] __device__(std::int64_t i) {
        p[i] = from_float<T>(philox_normal_at(seed, stream, static_cast<std::uint64_t>(i), a, b));
      });
    }
  });
}

void unary(UnaryOp op, const Tensor& x, Tensor& out) {
  LaunchContext ctx(x);
  const std::int64_t n = x.numel();
  LN_SWITCH_FLOAT(x.dtype(), unary_op_name(op), T, {
    const T* xp = x.data<T>();
    T* yp = out.data<T>();
    switch (op) {
      case UnaryOp::neg: launch_map<1>(ctx, n, xp, xp, yp, UnaryFn<UnaryOp::neg>{}); break;
      case UnaryOp::abs: launch_map<1>(ctx, n, xp, xp, yp, UnaryFn<UnaryOp::abs>{}); break;
      case UnaryOp::relu: launch_map<1>(ctx, n, xp, xp, yp, UnaryFn<UnaryOp::relu>{}); break;
      case UnaryOp::exp: launch_map<1>(ctx, n, xp, xp, yp, UnaryFn<UnaryOp::exp>{}); break;
      case UnaryOp::log: launch_map<1>(ctx, n, xp, xp, yp, UnaryFn<UnaryOp::log>{}); break;
      case UnaryOp::sqrt: launch_map<1>(ctx, n, xp, xp, yp, UnaryFn<UnaryOp::sqrt>{}); break;
      case UnaryOp::rsqrt: launch_map<1>(ctx, n, xp, xp, yp, UnaryFn<UnaryOp::rsqrt>{}); break;
      case UnaryOp::sigmoid: launch_map<1>(ctx, n, xp, xp, yp, UnaryFn<UnaryOp::sigmoid>{}); break;
      case UnaryOp::tanh: launch_map<1>(ctx, n, xp, xp, yp, UnaryFn<UnaryOp::tanh>{}); break;
      case UnaryOp::square: launch_map<1>(ctx, n, xp, xp, yp, UnaryFn<UnaryOp::square>{}); break;
      case UnaryOp::reciprocal: launch_map<1>(ctx, n, xp, xp, yp, UnaryFn<UnaryOp::reciprocal>{}); break;
    }
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  LaunchContext ctx(a);
  const std::int64_t n = a.numel();
  LN_SWITCH_FLOAT(a.dtype(), binary_op_name(op), T, {
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* yp = out.data<T>();
    switch (op) {
      case BinaryOp::add: launch_map<2>(ctx, n, ap, bp, yp, BinaryFn<BinaryOp::add>{}); break;
      case BinaryOp::sub: launch_map<2>(ctx, n, ap, bp, yp, BinaryFn<BinaryOp::sub>{}); break;
      case BinaryOp::mul: launch_map<2>(ctx, n, ap, bp, yp, BinaryFn<BinaryOp::mul>{}); break;
      case BinaryOp::div: launch_map<2>(ctx, n, ap, bp, yp, BinaryFn<BinaryOp::div>{}); break;
      case BinaryOp::maximum: launch_map<2>(ctx, n, ap, bp, yp, BinaryFn<BinaryOp::maximum>{}); break;
      case BinaryOp::minimum: launch_map<2>(ctx, n, ap, bp, yp, BinaryFn<BinaryOp::minimum>{}); break;
    }
  });
}

void axpby(float alpha, const Tensor& x, float beta, Tensor& y) {
  LaunchContext ctx(y);
  LN_SWITCH_FLOAT(y.dtype(), "axpby", T, {
    launch_map<2>(ctx, y.numel(), x.data<T>(), static_cast<const T*>(y.data<T>()), y.data<T>(), AxpbyFn{alpha, beta});
  });
}

// ---- reductions ------------------------------------------------------------------------------------

namespace {

// The combination of a reduction and its identity; NaN wins max and min, as on the CPU.
template <ReduceOp OP>
struct ReduceTraits {
  static __device__ float init() {
    if constexpr (OP == ReduceOp::max) return -INFINITY;
    else if constexpr (OP == ReduceOp::min) return INFINITY;
    else return 0.f;
  }
  __device__ float operator()(float a, float b) const {
    if constexpr (OP == ReduceOp::max) return (a > b || a != a) ? a : b;
    else if constexpr (OP == ReduceOp::min) return (a < b || a != a) ? a : b;
    else return a + b;
  }
};

// inner == 1. Block b reduces chunk (b % chunks) of row (b / chunks): threads stride over the chunk,
// then a warp-shuffle tree. With one chunk per row it writes the final (scaled) value; otherwise a
// partial that a second launch combines.
template <ReduceOp OP, typename T>
__global__ void reduce_rows_kernel(const T* __restrict__ x, std::int64_t r, int chunks, float scale,
                                   float* __restrict__ out) {
  const std::int64_t row = blockIdx.x / chunks;
  const int chunk = static_cast<int>(blockIdx.x % chunks);
  const std::int64_t k0 = r * chunk / chunks, k1 = r * (chunk + 1) / chunks;
  const T* p = x + row * r;
  const ReduceTraits<OP> combine;
  float acc = ReduceTraits<OP>::init();
  for (std::int64_t k = k0 + threadIdx.x; k < k1; k += blockDim.x) acc = combine(acc, to_float(p[k]));
  acc = block_reduce(acc, combine, ReduceTraits<OP>::init());
  if (threadIdx.x == 0) out[blockIdx.x] = acc * scale;
}

// inner > 1. A (32 x 8) block covers 32 consecutive inner columns of outer slices o = blockIdx.y,
// blockIdx.y + gridDim.y, ... and the rows of chunk blockIdx.z; the 8 thread rows stride over the chunk
// and combine through shared memory. Reads are coalesced along inner. Output [chunk][outer][inner].
template <ReduceOp OP, typename T>
__global__ void reduce_cols_kernel(const T* __restrict__ x, std::int64_t outer, std::int64_t r, std::int64_t inner,
                                   float scale, float* __restrict__ out) {
  const std::int64_t col = blockIdx.x * 32 + threadIdx.x;
  const int chunks = gridDim.z, chunk = blockIdx.z;
  const std::int64_t k0 = r * chunk / chunks, k1 = r * (chunk + 1) / chunks;
  __shared__ float tile[8][33];
  for (std::int64_t o = blockIdx.y; o < outer; o += gridDim.y) {
    float acc = ReduceTraits<OP>::init();
    if (col < inner) {
      const T* base = x + o * r * inner + col;
      for (std::int64_t k = k0 + threadIdx.y; k < k1; k += blockDim.y)
        acc = ReduceTraits<OP>{}(acc, to_float(base[k * inner]));
    }
    tile[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && col < inner) {
      for (int k = 1; k < static_cast<int>(blockDim.y); ++k) acc = ReduceTraits<OP>{}(acc, tile[k][threadIdx.x]);
      out[(chunk * outer + o) * inner + col] = acc * scale;
    }
    __syncthreads();
  }
}

// Splits long reductions into chunks so that the whole device works, then combines the partials.
template <ReduceOp OP, typename T>
void launch_reduce(const LaunchContext& ctx, const T* x, std::int64_t outer, std::int64_t r, std::int64_t inner,
                   float scale, float* out) {
  const std::int64_t target_blocks = static_cast<std::int64_t>(livernet::cuda::device_properties(ctx.device).multiProcessorCount) * 4;
  if (inner == 1) {
    const std::int64_t want = std::max<std::int64_t>(1, target_blocks / std::max<std::int64_t>(outer, 1));
    const int chunks = static_cast<int>(std::min<std::int64_t>({want, (r + 4095) / 4096, 1024}));
    LN_CHECK(outer * std::max(chunks, 1) <= 0x7fffffff, "reduce: too many rows");
    if (chunks <= 1) {
      reduce_rows_kernel<OP><<<static_cast<unsigned>(outer), 512, 0, ctx.stream>>>(x, r, 1, scale, out);
      LN_CUDA_CHECK_LAUNCH();
      return;
    }
    Tensor partial = Tensor::empty(Shape{outer, chunks}, DType::f32, Device::cuda(ctx.device));
    float* pp = partial.data<float>();
    reduce_rows_kernel<OP><<<static_cast<unsigned>(outer * chunks), 512, 0, ctx.stream>>>(x, r, chunks, 1.f, pp);
    LN_CUDA_CHECK_LAUNCH();
    reduce_rows_kernel<OP><<<static_cast<unsigned>(outer), 512, 0, ctx.stream>>>(static_cast<const float*>(pp), chunks, 1, scale, out);
    LN_CUDA_CHECK_LAUNCH();
    return;
  }
  const std::int64_t tiles = (inner + 31) / 32;
  const std::int64_t ys = std::min<std::int64_t>(outer, 65535);
  const std::int64_t want = std::max<std::int64_t>(1, target_blocks / std::max<std::int64_t>(tiles * ys, 1));
  const int chunks = static_cast<int>(std::min<std::int64_t>({want, (r + 255) / 256, 1024}));
  const dim3 block(32, 8);
  if (chunks <= 1) {
    reduce_cols_kernel<OP><<<dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(ys), 1), block, 0, ctx.stream>>>(
        x, outer, r, inner, scale, out);
    LN_CUDA_CHECK_LAUNCH();
    return;
  }
  Tensor partial = Tensor::empty(Shape{chunks, outer, inner}, DType::f32, Device::cuda(ctx.device));
  float* pp = partial.data<float>();
  reduce_cols_kernel<OP><<<dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(ys), static_cast<unsigned>(chunks)),
                           block, 0, ctx.stream>>>(x, outer, r, inner, 1.f, pp);
  LN_CUDA_CHECK_LAUNCH();
  // Combine: partials viewed as [1, chunks, outer * inner].
  const std::int64_t n2 = outer * inner;
  reduce_cols_kernel<OP><<<dim3(static_cast<unsigned>((n2 + 31) / 32), 1, 1), block, 0, ctx.stream>>>(
      static_cast<const float*>(pp), 1, chunks, n2, scale, out);
  LN_CUDA_CHECK_LAUNCH();
}

}  // namespace

void reduce(ReduceOp op, const Tensor& x, std::int64_t outer, std::int64_t r, std::int64_t inner, Tensor& out) {
  LaunchContext ctx(x);
  float* o = out.data<float>();
  LN_SWITCH_FLOAT(x.dtype(), reduce_op_name(op), T, {
    const T* xp = x.data<T>();
    switch (op) {
      case ReduceOp::sum: launch_reduce<ReduceOp::sum>(ctx, xp, outer, r, inner, 1.f, o); break;
      case ReduceOp::mean: launch_reduce<ReduceOp::sum>(ctx, xp, outer, r, inner, 1.f / static_cast<float>(r), o); break;
      case ReduceOp::max: launch_reduce<ReduceOp::max>(ctx, xp, outer, r, inner, 1.f, o); break;
      case ReduceOp::min: launch_reduce<ReduceOp::min>(ctx, xp, outer, r, inner, 1.f, o); break;
    }
  });
}

}  // namespace livernet::kernels::cuda

// ---- element-wise ops of the network layers ------------------------------------------------------------

namespace livernet::kernels::cuda {

namespace {
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

}  // namespace

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

}  // namespace livernet::kernels::cuda
