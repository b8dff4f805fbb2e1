// Front end of GEMM, bias add and linear.
#include "kernels/linear.h"

#include "kernels/conv.h"

#include "kernels/backend.h"
#include "kernels/checks.h"
#include "kernels/tensor_ops.h"

namespace livernet::kernels {

// ---- GEMM, bias, linear --------------------------------------------------------------------------------------

void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, float alpha, float beta, Tensor& c) {
  check_float("gemm", a, "A");
  check_float("gemm", b, "B");
  check_float("gemm", c, "C");
  LN_CHECK(a.dim() == 2 && b.dim() == 2 && c.dim() == 2, "gemm: operands must be 2-D, got ", a.shape().str(), " ",
           b.shape().str(), " ", c.shape().str());
  check_same_device("gemm", a, b);
  check_same_device("gemm", a, c);
  check_same_dtype("gemm", a, b);
  const std::int64_t m = trans_a ? a.size(1) : a.size(0), k = trans_a ? a.size(0) : a.size(1);
  const std::int64_t kb = trans_b ? b.size(1) : b.size(0), n = trans_b ? b.size(0) : b.size(1);
  LN_CHECK(k == kb, "gemm: inner dimensions differ: op(A) is [", m, ", ", k, "], op(B) is [", kb, ", ", n, "]");
  LN_CHECK(c.size(0) == m && c.size(1) == n, "gemm: C is ", c.shape().str(), " but op(A) op(B) is [", m, ", ", n, "]");
  if (c.numel() == 0) return;
  if (k == 0) {
    if (beta == 0.f) zero_(c);
    else axpby(0.f, c, beta, c);
    return;
  }
  add_flop_count(2ull * static_cast<std::uint64_t>(m) * static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(k));
  LN_DISPATCH(a.device(), gemm, a, trans_a, b, trans_b, alpha, beta, c);
}

Tensor matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b) {
  check_float("matmul", a, "A");
  LN_CHECK(a.dim() == 2 && b.defined() && b.dim() == 2, "matmul: operands must be 2-D");
  Tensor c = Tensor::empty(Shape{trans_a ? a.size(1) : a.size(0), trans_b ? b.size(0) : b.size(1)}, a.dtype(), a.device());
  gemm(a, trans_a, b, trans_b, 1.f, 0.f, c);
  return c;
}

void bias_add_(Tensor& y, const Tensor& bias) {
  check_float("bias_add", y, "input");
  check_float("bias_add", bias, "bias");
  LN_CHECK(bias.dim() == 1 && y.dim() >= 1 && bias.size(0) == y.size(-1), "bias_add: bias ", bias.shape().str(),
           " does not match the last dimension of ", y.shape().str());
  check_same_device("bias_add", y, bias);
  if (y.numel() == 0) return;
  LN_DISPATCH(y.device(), bias_add, y, bias);
}

Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& bias) {
  check_float("linear", x, "input");
  check_float("linear", w, "weight");
  LN_CHECK(x.dim() == 2, "linear: input must be [N, in_features], got ", x.shape().str());
  LN_CHECK(w.dim() == 2, "linear: weight must be [out_features, in_features], got ", w.shape().str());
  LN_CHECK(x.size(1) == w.size(1), "linear: input has ", x.size(1), " features but the weight ", w.shape().str(),
           " expects ", w.size(1));
  Tensor y = matmul(x, false, w.dtype() == x.dtype() ? w : to_dtype(w, x.dtype()), true);
  if (bias.defined()) bias_add_(y, bias);
  return y;
}

}  // namespace livernet::kernels
