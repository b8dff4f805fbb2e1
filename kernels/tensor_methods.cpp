// The Tensor methods that compute (declared in core/tensor.h): they run kernels, so they are defined
// here, above core, which keeps core free of any kernel code.
#include <cmath>

#include "kernels/ops.h"

namespace livernet {

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  kernels::fill(t, value);
  return t;
}

Tensor Tensor::arange(double start, double end, double step, DType dtype, Device device) {
  LN_CHECK(step != 0.0 && std::isfinite(step), "arange: step must be finite and non-zero");
  const double span = (end - start) / step;
  const std::int64_t n = span > 0 ? static_cast<std::int64_t>(std::ceil(span)) : 0;
  Tensor t = empty(Shape{n}, dtype, device);
  kernels::arange_fill(t, start, step);
  return t;
}

Tensor Tensor::randn(const Shape& shape, std::uint64_t seed, std::uint64_t stream, float mean, float stddev,
                     DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  kernels::random_fill(t, kernels::RandomDist::normal, seed, stream, mean, stddev);
  return t;
}

Tensor Tensor::rand(const Shape& shape, std::uint64_t seed, std::uint64_t stream, float lo, float hi, DType dtype,
                    Device device) {
  Tensor t = empty(shape, dtype, device);
  kernels::random_fill(t, kernels::RandomDist::uniform, seed, stream, lo, hi);
  return t;
}

Tensor Tensor::to(DType dtype) const {
  check_defined("to");
  if (this->dtype() == dtype) return *this;
  Tensor out = empty(shape(), dtype, device());
  kernels::cast(*this, out);
  return out;
}

Tensor& Tensor::fill_(double value) {
  check_defined("fill_");
  kernels::fill(*this, value);
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_defined("copy_");
  LN_CHECK(src.defined(), "copy_: source is undefined");
  LN_CHECK(src.numel() == numel(), "copy_: cannot copy ", src.shape().str(), " into ", shape().str());
  if (src.device() == device()) {
    kernels::cast(src, *this);
  } else if (src.dtype() == dtype()) {
    detail::copy_bytes(data_ptr(), device(), src.data_ptr(), src.device(), nbytes());
  } else {
    kernels::cast(src.to(device()), *this);
  }
  return *this;
}

Tensor& Tensor::add_(const Tensor& other) {
  check_defined("add_");
  check_same_shape("add_", *this, other);
  check_same_device("add_", *this, other);
  kernels::axpby(1.f, other, 1.f, *this);
  return *this;
}

}  // namespace livernet
