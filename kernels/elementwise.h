// Element-wise, random and reduction ops (raw, no autograd), and the element-wise ops of the network
// layers (activation backward, per-row scaling, dropout). Each op validates its arguments here
// (kernels/elementwise.cpp), then runs the CPU implementation (kernels/cpu/elementwise.cpp) or the CUDA
// one (kernels/cuda/elementwise.cu) chosen at one dispatch point by the tensors' device. Floating ops
// accept f32, bf16 and f16 and compute in f32.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "kernels/math.h"

namespace livernet::kernels {

// ---- fill, cast, random ----------------------------------------------------------------------------
void fill(Tensor& t, double value);
// dst = src converted to dst's dtype (same shape, same device); any dtype pair.
void cast(const Tensor& src, Tensor& dst);
// t[i] = start + i * step (1-D or any shape, row-major order).
void arange_fill(Tensor& t, double start, double step);
enum class RandomDist : std::uint8_t { uniform, normal };
// Element i = philox_*_at(seed, stream, i, a, b): uniform [a, b) or normal(mean a, stddev b).
void random_fill(Tensor& t, RandomDist dist, std::uint64_t seed, std::uint64_t stream, float a, float b);

// ---- element-wise ----------------------------------------------------------------------------------
void unary(UnaryOp op, const Tensor& x, Tensor& out);
Tensor unary(UnaryOp op, const Tensor& x);
// a and b: same shape and dtype; out too (may alias a or b).
void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out);
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
inline Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::add, a, b); }
inline Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::sub, a, b); }
inline Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::mul, a, b); }
// y = alpha * x + beta * y (in place on y; x may have a different float dtype than y).
void axpby(float alpha, const Tensor& x, float beta, Tensor& y);
// out = alpha * x
Tensor scale(const Tensor& x, float alpha);
inline Tensor relu(const Tensor& x) { return unary(UnaryOp::relu, x); }

// ---- reductions (f32 results, f32 accumulation or better) --------------------------------------------
// Over all elements: a one-element f32 tensor of shape [].
Tensor reduce_all(ReduceOp op, const Tensor& x);
inline Tensor sum(const Tensor& x) { return reduce_all(ReduceOp::sum, x); }
inline Tensor mean(const Tensor& x) { return reduce_all(ReduceOp::mean, x); }
inline Tensor max(const Tensor& x) { return reduce_all(ReduceOp::max, x); }
// Over the listed axes (negative counts from the end); keepdim leaves them as extent 1.
Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes, bool keepdim = false);
inline Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim = false) {
  return reduce(ReduceOp::sum, x, axes, keepdim);
}
inline Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdim = false) {
  return reduce(ReduceOp::mean, x, axes, keepdim);
}
inline Tensor max(const Tensor& x, const std::vector<int>& axes, bool keepdim = false) {
  return reduce(ReduceOp::max, x, axes, keepdim);
}

// ---- element-wise with gradients -----------------------------------------------------------------------
// dx = dy * d op(x) / dx, given x and y = op(x).
Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy);
// y = a * x, a a one-element f32 tensor on x's device (read there: no host sync).
Tensor scale_by(const Tensor& x, const Tensor& a);
// out (shape given) filled with scale * s[0], s a one-element tensor on the same device.
Tensor broadcast_scalar(const Tensor& s, float scale, const Shape& shape, DType dtype);

// ---- dropout (Philox; the mask depends only on (seed, stream, element index)) ------------------------
Tensor dropout_forward(const Tensor& x, float p, std::uint64_t seed, std::uint64_t stream);
Tensor dropout_backward(const Tensor& dy, float p, std::uint64_t seed, std::uint64_t stream);

}  // namespace livernet::kernels
