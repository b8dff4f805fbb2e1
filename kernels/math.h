// Per-element math shared by the CPU and CUDA kernels (host and device code), so the CPU tests
// exercise exactly the arithmetic the GPU runs.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/macros.h"

namespace livernet::kernels {

enum class UnaryOp : std::uint8_t { neg, abs, relu, exp, log, sqrt, rsqrt, sigmoid, tanh, square, reciprocal };
enum class BinaryOp : std::uint8_t { add, sub, mul, div, maximum, minimum };
enum class ReduceOp : std::uint8_t { sum, mean, max, min };

const char* unary_op_name(UnaryOp op);
const char* binary_op_name(BinaryOp op);
const char* reduce_op_name(ReduceOp op);

LN_HD_INLINE float relu_f(float x) { return x > 0.f ? x : 0.f; }
// Numerically stable logistic function.
LN_HD_INLINE float sigmoid_f(float x) {
  if (x >= 0.f) {
    const float z = expf(-x);
    return 1.f / (1.f + z);
  }
  const float z = expf(x);
  return z / (1.f + z);
}

template <UnaryOp OP>
LN_HD_INLINE float unary_apply(float x) {
  if constexpr (OP == UnaryOp::neg) return -x;
  else if constexpr (OP == UnaryOp::abs) return fabsf(x);
  else if constexpr (OP == UnaryOp::relu) return relu_f(x);
  else if constexpr (OP == UnaryOp::exp) return expf(x);
  else if constexpr (OP == UnaryOp::log) return logf(x);
  else if constexpr (OP == UnaryOp::sqrt) return sqrtf(x);
  else if constexpr (OP == UnaryOp::rsqrt) return 1.f / sqrtf(x);
  else if constexpr (OP == UnaryOp::sigmoid) return sigmoid_f(x);
  else if constexpr (OP == UnaryOp::tanh) return tanhf(x);
  else if constexpr (OP == UnaryOp::square) return x * x;
  else return 1.f / x;  // reciprocal
}

template <BinaryOp OP>
LN_HD_INLINE float binary_apply(float a, float b) {
  if constexpr (OP == BinaryOp::add) return a + b;
  else if constexpr (OP == BinaryOp::sub) return a - b;
  else if constexpr (OP == BinaryOp::mul) return a * b;
  else if constexpr (OP == BinaryOp::div) return a / b;
  else if constexpr (OP == BinaryOp::maximum) return a > b ? a : (a == a ? b : a);  // NaN propagates
  else return a < b ? a : (a == a ? b : a);                                        // minimum
}

// dL/dx of relu, given the forward output y (y > 0 exactly where x > 0).
LN_HD_INLINE float relu_backward_f(float y, float dy) { return y > 0.f ? dy : 0.f; }

// y = alpha * x + beta * y; beta == 0 ignores the old y (even NaN), as BLAS does.
LN_HD_INLINE float axpby_f(float alpha, float x, float beta, float y) {
  return beta == 0.f ? alpha * x : alpha * x + beta * y;
}

}  // namespace livernet::kernels
