// CPU element-wise, random and reduction kernels (OpenMP over contiguous chunks; the inner loops are
// simple enough for the compiler to vectorise), and at the end the element-wise ops of the network
// layers: bias add, the backward of unary activations, per-row scaling, scalar broadcast and dropout.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/philox.h"
#include "kernels/backend.h"
#include "kernels/convert_math.h"
#include "kernels/cpu/parallel.h"
#include "kernels/nn_math.h"
#include "kernels/tensor_ops.h"
#include "kernels/type_switch.h"

namespace livernet::kernels::cpu {

void fill(Tensor& t, double value) {
  const std::int64_t n = t.numel();
  LN_SWITCH_ALL(t.dtype(), "fill", T, {
    T* p = t.data<T>();
    const T v = convert<T>(value);
    parallel_for(n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) p[i] = v;
    });
  });
}

void cast(const Tensor& src, Tensor& dst) {
  const std::int64_t n = src.numel();
  LN_SWITCH_ALL(src.dtype(), "cast", S, {
    const S* s = src.data<S>();
    LN_SWITCH_ALL(dst.dtype(), "cast", D, {
      D* d = dst.data<D>();
      parallel_for(n, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) d[i] = convert<D>(s[i]);
      });
    });
  });
}

void arange_fill(Tensor& t, double start, double step) {
  const std::int64_t n = t.numel();
  LN_SWITCH_ALL(t.dtype(), "arange", T, {
    T* p = t.data<T>();
    parallel_for(n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) p[i] = convert<T>(start + static_cast<double>(i) * step);
    });
  });
}

void random_fill(Tensor& t, RandomDist dist, std::uint64_t seed, std::uint64_t stream, float a, float b) {
  const std::int64_t n = t.numel();
  LN_SWITCH_FLOAT(t.dtype(), "random_fill", T, {
    T* p = t.data<T>();
    parallel_for(n, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) {
        const auto idx = static_cast<std::uint64_t>(i);
        const float v = dist == RandomDist::uniform ? philox_uniform_at(seed, stream, idx, a, b)
                                                    : philox_normal_at(seed, stream, idx, a, b);
        p[i] = from_float<T>(v);
      }
    });
  });
}

namespace {

template <UnaryOp OP, typename T>
void unary_loop(const T* x, T* y, std::int64_t n) {
  parallel_for(n, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) y[i] = from_float<T>(unary_apply<OP>(to_float(x[i])));
  });
}

template <BinaryOp OP, typename T>
void binary_loop(const T* a, const T* b, T* y, std::int64_t n) {
  parallel_for(n, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) y[i] = from_float<T>(binary_apply<OP>(to_float(a[i]), to_float(b[i])));
  });
}

}  // namespace

void unary(UnaryOp op, const Tensor& x, Tensor& out) {
  const std::int64_t n = x.numel();
  LN_SWITCH_FLOAT(x.dtype(), unary_op_name(op), T, {
    const T* xp = x.data<T>();
    T* yp = out.data<T>();
    switch (op) {
      case UnaryOp::neg: unary_loop<UnaryOp::neg>(xp, yp, n); break;
      case UnaryOp::abs: unary_loop<UnaryOp::abs>(xp, yp, n); break;
      case UnaryOp::relu: unary_loop<UnaryOp::relu>(xp, yp, n); break;
      case UnaryOp::exp: unary_loop<UnaryOp::exp>(xp, yp, n); break;
      case UnaryOp::log: unary_loop<UnaryOp::log>(xp, yp, n); break;
      case UnaryOp::sqrt: unary_loop<UnaryOp::sqrt>(xp, yp, n); break;
      case UnaryOp::rsqrt: unary_loop<UnaryOp::rsqrt>(xp, yp, n); break;
      case UnaryOp::sigmoid: unary_loop<UnaryOp::sigmoid>(xp, yp, n); break;
      case UnaryOp::tanh: unary_loop<UnaryOp::tanh>(xp, yp, n); break;
      case UnaryOp::square: unary_loop<UnaryOp::square>(xp, yp, n); break;
      case UnaryOp::reciprocal: unary_loop<UnaryOp::reciprocal>(xp, yp, n); break;
    }
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  const std::int64_t n = a.numel();
  LN_SWITCH_FLOAT(a.dtype(), binary_op_name(op), T, {
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* yp = out.data<T>();
    switch (op) {
      case BinaryOp::add: binary_loop<BinaryOp::add>(ap, bp, yp, n); break;
      case BinaryOp::sub: binary_loop<BinaryOp::sub>(ap, bp, yp, n); break;
      case BinaryOp::mul: binary_loop<BinaryOp::mul>(ap, bp, yp, n); break;
      case BinaryOp::div: binary_loop<BinaryOp::div>(ap, bp, yp, n); break;
      case BinaryOp::maximum: binary_loop<BinaryOp::maximum>(ap, bp, yp, n); break;
      case BinaryOp::minimum: binary_loop<BinaryOp::minimum>(ap, bp, yp, n); break;
    }
  });
}

void axpby(float alpha, const Tensor& x, float beta, Tensor& y) {
  const std::int64_t n = y.numel();
  LN_SWITCH_FLOAT(y.dtype(), "axpby", T, {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    parallel_for(n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) yp[i] = from_float<T>(axpby_f(alpha, to_float(xp[i]), beta, to_float(yp[i])));
    });
  });
}

// ---- reductions: x as [outer, r, inner] -> out[outer, inner]; accumulation in double ----------------

namespace {

struct SumAcc {
  static double init() { return 0.0; }
  static double combine(double a, double b) { return a + b; }
};
struct MaxAcc {
  static double init() { return -std::numeric_limits<double>::infinity(); }
  static double combine(double a, double b) { return (a > b || a != a) ? a : b; }
};
struct MinAcc {
  static double init() { return std::numeric_limits<double>::infinity(); }
  static double combine(double a, double b) { return (a < b || a != a) ? a : b; }
};

// Reduces n contiguous values with four independent accumulators (no loop-carried memory dependency).
template <typename Acc, typename T>
double reduce_contiguous(const T* __restrict p, std::int64_t n) {
  double a0 = Acc::init(), a1 = Acc::init(), a2 = Acc::init(), a3 = Acc::init();
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 = Acc::combine(a0, to_double(p[i]));
    a1 = Acc::combine(a1, to_double(p[i + 1]));
    a2 = Acc::combine(a2, to_double(p[i + 2]));
    a3 = Acc::combine(a3, to_double(p[i + 3]));
  }
  for (; i < n; ++i) a0 = Acc::combine(a0, to_double(p[i]));
  return Acc::combine(Acc::combine(a0, a1), Acc::combine(a2, a3));
}

// acc[i] (+)= rows k0..k1 of a [r, inner] block, row by row (vectorises along inner).
template <typename Acc, typename T>
void accumulate_rows(const T* __restrict x, std::int64_t k0, std::int64_t k1, std::int64_t inner,
                     double* __restrict acc) {
  for (std::int64_t k = k0; k < k1; ++k) {
    const T* __restrict row = x + k * inner;
    for (std::int64_t i = 0; i < inner; ++i) acc[i] = Acc::combine(acc[i], to_double(row[i]));
  }
}

template <typename Acc, typename T>
void reduce_impl(const T* x, std::int64_t outer, std::int64_t r, std::int64_t inner, double scale, float* out) {
  const std::int64_t n_out = outer * inner;
  const int threads = (outer * r * inner <= kParallelGrain || omp_in_parallel()) ? 1 : omp_get_max_threads();
  if (threads == 1 || outer >= threads) {
    // Split the outer slices between threads; each slice is reduced whole.
    parallel_for(
        outer,
        [&](std::int64_t b, std::int64_t e) {
          std::vector<double> acc(static_cast<std::size_t>(inner));
          for (std::int64_t o = b; o < e; ++o) {
            const T* slice = x + o * r * inner;
            if (inner == 1) {
              out[o] = static_cast<float>(reduce_contiguous<Acc>(slice, r) * scale);
              continue;
            }
            std::fill(acc.begin(), acc.end(), Acc::init());
            accumulate_rows<Acc>(slice, 0, r, inner, acc.data());
            for (std::int64_t i = 0; i < inner; ++i) out[o * inner + i] = static_cast<float>(acc[i] * scale);
          }
        },
        std::max<std::int64_t>(1, kParallelGrain / std::max<std::int64_t>(r * inner, 1)));
    return;
  }
  // Few outer slices: every thread reduces a range of r for all outputs into its own partials.
  std::vector<double> partial(static_cast<std::size_t>(threads * n_out), Acc::init());
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    double* acc = partial.data() + static_cast<std::size_t>(t) * n_out;
    const std::int64_t k0 = r * t / nt, k1 = r * (t + 1) / nt;
    for (std::int64_t o = 0; o < outer; ++o) {
      const T* slice = x + o * r * inner;
      if (inner == 1) {
        acc[o] = reduce_contiguous<Acc>(slice + k0, k1 - k0);
      } else {
        accumulate_rows<Acc>(slice, k0, k1, inner, acc + o * inner);
      }
    }
  }
  for (std::int64_t j = 0; j < n_out; ++j) {
    double a = Acc::init();
    for (int t = 0; t < threads; ++t) a = Acc::combine(a, partial[static_cast<std::size_t>(t) * n_out + j]);
    out[j] = static_cast<float>(a * scale);
  }
}

}  // namespace

void reduce(ReduceOp op, const Tensor& x, std::int64_t outer, std::int64_t r, std::int64_t inner, Tensor& out) {
  float* o = out.data<float>();
  LN_SWITCH_FLOAT(x.dtype(), reduce_op_name(op), T, {
    const T* xp = x.data<T>();
    switch (op) {
      case ReduceOp::sum: reduce_impl<SumAcc>(xp, outer, r, inner, 1.0, o); break;
      case ReduceOp::mean: reduce_impl<SumAcc>(xp, outer, r, inner, 1.0 / static_cast<double>(r), o); break;
      case ReduceOp::max: reduce_impl<MaxAcc>(xp, outer, r, inner, 1.0, o); break;
      case ReduceOp::min: reduce_impl<MinAcc>(xp, outer, r, inner, 1.0, o); break;
    }
  });
}

// ---- element-wise ops of the network layers: bias, activation backward, scaling, dropout ---------------

void bias_add(Tensor& y, const Tensor& bias) {
  const std::int64_t C = y.size(-1), M = y.numel() / C;
  const Tensor bf = to_dtype(bias, DType::f32);
  const float* bp = bf.data<float>();
  LN_SWITCH_FLOAT(y.dtype(), "bias_add", T, {
    T* yp = y.data<T>();
    parallel_for(M, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t r = b; r < e; ++r)
        for (std::int64_t c = 0; c < C; ++c) yp[r * C + c] = from_float<T>(to_float(yp[r * C + c]) + bp[c]);
    }, std::max<std::int64_t>(1, kParallelGrain / C));
  });
}

namespace {
template <UnaryOp OP, typename T>
void unary_backward_loop(const T* x, const T* y, const T* dy, T* dx, std::int64_t n) {
  parallel_for(n, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i)
      dx[i] = from_float<T>(unary_grad<OP>(to_float(x[i]), to_float(y[i]), to_float(dy[i])));
  });
}
}  // namespace

void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx) {
  const std::int64_t n = x.numel();
  LN_SWITCH_FLOAT(x.dtype(), "unary_backward", T, {
    const T* xp = x.data<T>();
    const T* yp = y.data<T>();
    const T* gp = dy.data<T>();
    T* dp = dx.data<T>();
    switch (op) {
      case UnaryOp::neg: unary_backward_loop<UnaryOp::neg>(xp, yp, gp, dp, n); break;
      case UnaryOp::abs: unary_backward_loop<UnaryOp::abs>(xp, yp, gp, dp, n); break;
      case UnaryOp::relu: unary_backward_loop<UnaryOp::relu>(xp, yp, gp, dp, n); break;
      case UnaryOp::exp: unary_backward_loop<UnaryOp::exp>(xp, yp, gp, dp, n); break;
      case UnaryOp::log: unary_backward_loop<UnaryOp::log>(xp, yp, gp, dp, n); break;
      case UnaryOp::sqrt: unary_backward_loop<UnaryOp::sqrt>(xp, yp, gp, dp, n); break;
      case UnaryOp::rsqrt: unary_backward_loop<UnaryOp::rsqrt>(xp, yp, gp, dp, n); break;
      case UnaryOp::sigmoid: unary_backward_loop<UnaryOp::sigmoid>(xp, yp, gp, dp, n); break;
      case UnaryOp::tanh: unary_backward_loop<UnaryOp::tanh>(xp, yp, gp, dp, n); break;
      case UnaryOp::square: unary_backward_loop<UnaryOp::square>(xp, yp, gp, dp, n); break;
      case UnaryOp::reciprocal: unary_backward_loop<UnaryOp::reciprocal>(xp, yp, gp, dp, n); break;
    }
  });
}

void scale_by(const Tensor& x, const Tensor& a, Tensor& y) {
  const float s = a.data<float>()[0];
  axpby(s, x, 0.f, y);
}

void broadcast_scalar(const Tensor& s, float scale, Tensor& out) {
  double v = 0;
  LN_SWITCH_FLOAT(s.dtype(), "broadcast_scalar", T, { v = to_double(s.data<T>()[0]); });
  fill(out, static_cast<double>(static_cast<float>(v) * scale));
}

void dropout(const Tensor& x, float p, std::uint64_t seed, std::uint64_t stream, Tensor& y) {
  const std::int64_t n = x.numel();
  const float scale = p < 1.f ? 1.f / (1.f - p) : 0.f;
  LN_SWITCH_FLOAT(x.dtype(), "dropout", T, {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    parallel_for(n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        const bool keep = p <= 0.f || (p < 1.f && dropout_keep(seed, stream, static_cast<std::uint64_t>(i), p));
        yp[i] = from_float<T>(keep ? to_float(xp[i]) * (p <= 0.f ? 1.f : scale) : 0.f);
      }
    });
  });
}

}  // namespace livernet::kernels::cpu
