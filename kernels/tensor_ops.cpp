#include "kernels/tensor_ops.h"

#include <cmath>

#include "kernels/elementwise.h"

namespace livernet {

Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  kernels::fill(t, value);
  return t;
}

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  LN_CHECK(step != 0.0 && std::isfinite(step), "arange: step must be finite and non-zero");
  const double span = (end - start) / step;
  const std::int64_t n = span > 0 ? static_cast<std::int64_t>(std::ceil(span)) : 0;
  Tensor t = Tensor::empty(Shape{n}, dtype, device);
  kernels::arange_fill(t, start, step);
  return t;
}

Tensor randn(const Shape& shape, std::uint64_t seed, std::uint64_t stream, float mean, float stddev, DType dtype,
             Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  kernels::random_fill(t, kernels::RandomDist::normal, seed, stream, mean, stddev);
  return t;
}

Tensor rand(const Shape& shape, std::uint64_t seed, std::uint64_t stream, float lo, float hi, DType dtype,
            Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  kernels::random_fill(t, kernels::RandomDist::uniform, seed, stream, lo, hi);
  return t;
}

Tensor to_dtype(const Tensor& t, DType dtype) {
  LN_CHECK(t.defined(), "to_dtype: tensor is undefined");
  if (t.dtype() == dtype) return t;
  Tensor out = Tensor::empty(t.shape(), dtype, t.device());
  kernels::cast(t, out);
  return out;
}

const Tensor& fill_(const Tensor& dst, double value) {
  LN_CHECK(dst.defined(), "fill_: tensor is undefined");
  Tensor d = dst;
  kernels::fill(d, value);
  return dst;
}

const Tensor& copy_(const Tensor& dst, const Tensor& src) {
  LN_CHECK(dst.defined(), "copy_: destination is undefined");
  LN_CHECK(src.defined(), "copy_: source is undefined");
  LN_CHECK(src.numel() == dst.numel(), "copy_: cannot copy ", src.shape().str(), " into ", dst.shape().str());
  Tensor d = dst;
  if (src.device() == dst.device()) {
    kernels::cast(src, d);
  } else if (src.dtype() == dst.dtype()) {
    detail::copy_bytes(dst.data_ptr(), dst.device(), src.data_ptr(), src.device(), dst.nbytes());
  } else {
    kernels::cast(src.to(dst.device()), d);
  }
  return dst;
}

const Tensor& add_(const Tensor& dst, const Tensor& src) {
  LN_CHECK(dst.defined() && src.defined(), "add_: tensor is undefined");
  check_same_shape("add_", dst, src);
  check_same_device("add_", dst, src);
  Tensor d = dst;
  kernels::axpby(1.f, src, 1.f, d);
  return dst;
}

}  // namespace livernet
