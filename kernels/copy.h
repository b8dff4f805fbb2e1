// Copies that reshape data (raw, no autograd): concatenation along any axis and its inverse, 2-D padding
// and cropping. They run as strided block copies (kernels/cpu/copy.cpp, kernels/cuda/copy.cu).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/math.h"

namespace livernet::kernels {

// ---- concatenation along any axis, and its inverse ------------------------------------------------------
Tensor concat(const std::vector<Tensor>& xs, int axis);
// Pieces of y along `axis` with the given extents (the gradient of concat).
std::vector<Tensor> split(const Tensor& y, int axis, const std::vector<std::int64_t>& sizes);
// Zero padding of an NHWC tensor's H and W, and its inverse (crop).
Tensor pad2d(const Tensor& x, int top, int bottom, int left, int right);
Tensor crop2d(const Tensor& x, int top, int bottom, int left, int right);

}  // namespace livernet::kernels
