// Tensors made or changed by running a kernel: the factories (zeros, ones, full, arange, randn, rand) and
// the raw in-place and converting operations that core/tensor.h leaves out because core runs no kernels.
// None records autograd history (the differentiable ops are in layers/functional.h).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace livernet {

Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::f32, Device device = Device::cpu());
// [start, start + step, ...) up to (not including) end, as a 1-D tensor.
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::f32, Device device = Device::cpu());
// Philox-based random tensors: element i depends only on (seed, stream, i), on every device.
Tensor randn(const Shape& shape, std::uint64_t seed, std::uint64_t stream = 0, float mean = 0.f, float stddev = 1.f,
             DType dtype = DType::f32, Device device = Device::cpu());
Tensor rand(const Shape& shape, std::uint64_t seed, std::uint64_t stream = 0, float lo = 0.f, float hi = 1.f,
            DType dtype = DType::f32, Device device = Device::cpu());

// t's values converted to `dtype` (a new tensor on t's device); t itself when it already has that dtype.
Tensor to_dtype(const Tensor& t, DType dtype);

// In place on dst's memory (dst is a handle: a view such as slice0(...) works). They return dst.
// dst = src: same number of elements; any devices; src is cast to dst's dtype.
const Tensor& copy_(const Tensor& dst, const Tensor& src);
const Tensor& fill_(const Tensor& dst, double value);
inline const Tensor& zero_(const Tensor& dst) { return fill_(dst, 0.0); }
// dst += src (same shape and device; src is cast to dst's dtype). Gradient accumulation uses it.
const Tensor& add_(const Tensor& dst, const Tensor& src);

}  // namespace livernet
