// Matrix products and bias (raw, no autograd): GEMM on oneDNN (CPU) or cuBLAS (CUDA), and the linear
// layer's forward.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/math.h"

namespace livernet::kernels {

// ---- matrix products, bias -------------------------------------------------------------------------------
// c = alpha * op(a) @ op(b) + beta * c for 2-D row-major tensors; op transposes when asked.
void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, float alpha, float beta, Tensor& c);
Tensor matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b);
// y[..., c] += bias[c] in place (bias of any float dtype).
void bias_add_(Tensor& y, const Tensor& bias);
// y = x @ w^T + bias (x [N, in], w [out, in], bias [out] or undefined).
Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& bias);

}  // namespace livernet::kernels
