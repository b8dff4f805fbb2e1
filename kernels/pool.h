// Pooling (raw, no autograd): max and average over NHWC windows, global average. Argument checks here,
// then LN_DISPATCH to kernels/cpu/pool.cpp or kernels/cuda/pool.cu.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/math.h"

namespace livernet::kernels {

// ---- pooling -----------------------------------------------------------------------------------------
struct Pool2dParams {
  int kernel_h = 3, kernel_w = 3, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  bool count_include_pad = true;  // average pool: divide by kh*kw (torchvision) or by the in-bounds count (Keras/TF)
  static Pool2dParams make(int k, int s, int pad, bool count_include_pad = true) {
    return Pool2dParams{k, k, s, s, pad, pad, count_include_pad};
  }
  std::int64_t out_h(std::int64_t h) const { return (h + 2 * pad_h - kernel_h) / stride_h + 1; }
  std::int64_t out_w(std::int64_t w) const { return (w + 2 * pad_w - kernel_w) / stride_w + 1; }
};
// y and the flat in-plane index (h * W + w, i32) of each window's maximum (the first one on ties; a NaN
// wins and the first NaN stays; padding counts as -inf). Without with_indices (inference), indices is left
// undefined and not computed.
Tensor max_pool2d_forward(const Tensor& x, const Pool2dParams& p, Tensor& indices, bool with_indices = true);
Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape, const Pool2dParams& p);
Tensor avg_pool2d_forward(const Tensor& x, const Pool2dParams& p);
Tensor avg_pool2d_backward(const Tensor& dy, const Shape& x_shape, const Pool2dParams& p);
// [N, H, W, C] -> [N, C] mean over H and W (in x's dtype), and its gradient.
Tensor global_avg_pool_forward(const Tensor& x);
Tensor global_avg_pool_backward(const Tensor& dy, const Shape& x_shape);

}  // namespace livernet::kernels
