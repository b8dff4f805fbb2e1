#include "core/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>


#include "core/device_backend.h"

namespace livernet {

namespace detail {

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  const Device gpu = dst_device.is_cpu() ? src_device : dst_device;
  DeviceBackend* b = device_backend(gpu.type);
  if (!b) LN_FAIL("copy between ", src_device.str(), " and ", dst_device.str(), ": ", cuda_unavailable_reason());
  b->copy_bytes(dst, dst_device, src, src_device, nbytes);
}

std::vector<double> to_double_vector(const Tensor& t) {
  LN_CHECK(t.defined(), "to_vector() on an undefined tensor");
  const Tensor h = t.to(Device::cpu());
  const std::int64_t n = h.numel();
  std::vector<double> out(static_cast<std::size_t>(n));
  const void* p = h.data_ptr();
  switch (h.dtype()) {
    case DType::f32: std::transform(static_cast<const float*>(p), static_cast<const float*>(p) + n, out.begin(), [](float v) { return double(v); }); break;
    case DType::bf16:
      for (std::int64_t i = 0; i < n; ++i) out[i] = bf16_bits_to_float(static_cast<const std::uint16_t*>(p)[i]);
      break;
    case DType::f16:
      for (std::int64_t i = 0; i < n; ++i) out[i] = f16_bits_to_float(static_cast<const std::uint16_t*>(p)[i]);
      break;
    case DType::i32: std::copy(static_cast<const std::int32_t*>(p), static_cast<const std::int32_t*>(p) + n, out.begin()); break;
    case DType::i64: std::copy(static_cast<const std::int64_t*>(p), static_cast<const std::int64_t*>(p) + n, out.begin()); break;
    case DType::u8: std::copy(static_cast<const std::uint8_t*>(p), static_cast<const std::uint8_t*>(p) + n, out.begin()); break;
  }
  return out;
}

}  // namespace detail

void Tensor::check_defined(const char* what) const {
  if (!impl_) throw Error(str_cat(what, "() on an undefined tensor"));
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  auto impl = std::make_shared<TensorImpl>();
  const std::int64_t n = shape.numel();
  const std::size_t nbytes = static_cast<std::size_t>(n) * dtype_size(dtype);
  LN_CHECK(n == 0 || nbytes / static_cast<std::size_t>(n) == dtype_size(dtype), "tensor of shape ", shape.str(),
           " is too large");
  impl->storage = std::make_shared<Storage>(nbytes, device);
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::from_blob(void* data, const Shape& shape, DType dtype, Device device,
                         std::function<void(void*)> deleter) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(data, static_cast<std::size_t>(shape.numel()) * dtype_size(dtype),
                                            device, std::move(deleter));
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

const Shape& Tensor::shape() const {
  check_defined("shape");
  return impl_->shape;
}

DType Tensor::dtype() const {
  check_defined("dtype");
  return impl_->dtype;
}

Device Tensor::device() const {
  check_defined("device");
  return impl_->storage->device();
}

void* Tensor::data_ptr() const {
  check_defined("data_ptr");
  char* base = static_cast<char*>(impl_->storage->data());
  return base ? base + impl_->offset : nullptr;
}

const std::shared_ptr<Storage>& Tensor::storage() const {
  check_defined("storage");
  return impl_->storage;
}

bool Tensor::shares_memory_with(const Tensor& other) const {
  if (!defined() || !other.defined() || impl_->storage != other.impl_->storage) return false;
  const std::size_t a0 = impl_->offset, a1 = a0 + nbytes();
  const std::size_t b0 = other.impl_->offset, b1 = b0 + other.nbytes();
  return a0 < b1 && b0 < a1;
}

Tensor Tensor::to(Device device) const {
  check_defined("to");
  if (this->device() == device) return *this;
  Tensor out = empty(shape(), dtype(), device);
  detail::copy_bytes(out.data_ptr(), device, data_ptr(), this->device(), nbytes());
  return out;
}


PendingCopy& PendingCopy::operator=(PendingCopy&& o) noexcept {
  if (this != &o) {
    try {
      wait();
    } catch (const std::exception&) {
      // a failed copy is reported by the next CUDA call on the stream
    }
    event_ = o.event_;
    o.event_ = nullptr;
  }
  return *this;
}

PendingCopy::~PendingCopy() {
  try {
    wait();
  } catch (const std::exception&) {
    // as above: never throw from a destructor
  }
}

void PendingCopy::wait() {
  if (!event_) return;
  void* e = event_;
  event_ = nullptr;
  // Only a backend's copy_from_pinned_async makes a pending copy.
  device_backend(DeviceType::CUDA)->wait_copy(e);
}

PendingCopy copy_from_pinned(Tensor& dst, const Tensor& src) {
  LN_CHECK(dst.defined() && src.defined(), "copy_from_pinned: undefined tensor");
  LN_CHECK(src.is_cpu(), "copy_from_pinned: the source must be in host memory, got ", src.device().str());
  LN_CHECK(dst.dtype() == src.dtype() && dst.numel() == src.numel(), "copy_from_pinned: ", src.shape().str(), " ",
           dtype_name(src.dtype()), " into ", dst.shape().str(), " ", dtype_name(dst.dtype()));
  if (dst.is_cpu()) {
    detail::copy_bytes(dst.data_ptr(), dst.device(), src.data_ptr(), src.device(), src.nbytes());
    return PendingCopy();
  }
  DeviceBackend* b = device_backend(dst.device().type);
  if (!b) LN_FAIL("copy to ", dst.device().str(), ": ", cuda_unavailable_reason());
  return PendingCopy(b->copy_from_pinned_async(dst.data_ptr(), dst.device().index, src.data_ptr(), src.nbytes()));
}

Tensor Tensor::clone() const {
  check_defined("clone");
  Tensor out = empty(shape(), dtype(), device());
  detail::copy_bytes(out.data_ptr(), device(), data_ptr(), device(), nbytes());
  return out;
}

Tensor Tensor::reshape(const std::vector<std::int64_t>& dims) const {
  check_defined("reshape");
  std::vector<std::int64_t> d = dims;
  int infer = -1;
  std::int64_t known = 1;
  for (std::size_t i = 0; i < d.size(); ++i) {
    if (d[i] == -1) {
      LN_CHECK(infer < 0, "reshape: more than one -1 in the new shape");
      infer = static_cast<int>(i);
    } else {
      LN_CHECK(d[i] >= 0, "reshape: negative extent ", d[i]);
      known *= d[i];
    }
  }
  if (infer >= 0) {
    LN_CHECK(known > 0 && numel() % known == 0, "reshape: cannot infer -1 for ", numel(), " elements");
    d[infer] = numel() / known;
  }
  return view(Shape(d));
}

Tensor Tensor::view(const Shape& shape) const {
  check_defined("reshape");
  LN_CHECK(shape.numel() == numel(), "reshape: shape ", this->shape().str(), " (", numel(),
           " elements) cannot become ", shape.str(), " (", shape.numel(), " elements)");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = shape;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::slice0(std::int64_t start, std::int64_t end) const {
  check_defined("slice0");
  LN_CHECK(dim() >= 1, "slice0 on a 0-d tensor");
  const std::int64_t n = size(0);
  LN_CHECK(0 <= start && start <= end && end <= n, "slice0: rows [", start, ", ", end, ") out of range for shape ",
           shape().str());
  Shape s = shape();
  s[0] = end - start;
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  const std::int64_t row = n == 0 ? 0 : numel() / n;
  impl->offset = impl_->offset + static_cast<std::size_t>(start * row) * element_size();
  impl->shape = s;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

double Tensor::item() const {
  check_defined("item");
  LN_CHECK(numel() == 1, "item() needs a one-element tensor, got shape ", shape().str());
  return detail::to_double_vector(*this)[0];
}

std::string Tensor::summary() const {
  if (!defined()) return "Tensor(undefined)";
  std::string s = str_cat("Tensor", shape().str(), " ", dtype_name(dtype()), " ", device().str());
  if (requires_grad()) s += " requires_grad";
  if (numel() > 0) {
    const std::vector<double> v = detail::to_double_vector(*this);
    double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
    std::int64_t nonfinite = 0;
    for (double x : v) {
      if (!std::isfinite(x)) {
        ++nonfinite;
        continue;
      }
      lo = std::min(lo, x);
      hi = std::max(hi, x);
      sum += x;
    }
    const std::int64_t finite = numel() - nonfinite;
    if (finite > 0) {
      char buf[160];
      std::snprintf(buf, sizeof buf, " min=%.6g max=%.6g mean=%.6g", lo, hi, sum / static_cast<double>(finite));
      s += buf;
    }
    if (nonfinite > 0) s += str_cat(" non-finite=", nonfinite);
  }
  return s;
}

// ---- autograd state ----------------------------------------------------------------------------------

Tensor& Tensor::requires_grad_(bool on) {
  check_defined("requires_grad_");
  LN_CHECK(is_leaf() || on, "requires_grad_(false) on a non-leaf tensor; use detach()");
  LN_CHECK(!on || is_floating(dtype()), "only floating tensors can require grad (this one is ",
           dtype_name(dtype()), ")");
  impl_->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  check_defined("grad");
  return Tensor(impl_->grad);
}

void Tensor::set_grad(const Tensor& g) {
  check_defined("set_grad");
  if (g.defined()) check_same_shape("set_grad", *this, g);
  impl_->grad = g.impl_ptr();
}

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  check_defined("grad_fn");
  return impl_->grad_fn;
}

Tensor Tensor::detach() const {
  check_defined("detach");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

// ---- checks -----------------------------------------------------------------------------------------

void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  if (!(a.shape() == b.shape()))
    throw Error(str_cat(op, ": shapes differ: ", a.shape().str(), " vs ", b.shape().str()));
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    throw Error(str_cat(op, ": dtypes differ: ", dtype_name(a.dtype()), " vs ", dtype_name(b.dtype())));
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  if (!(a.device() == b.device()))
    throw Error(str_cat(op, ": tensors are on different devices: ", a.device().str(), " vs ", b.device().str()));
}

void check_dtype(const char* op, const Tensor& t, DType expected, const char* which) {
  if (t.dtype() != expected)
    throw Error(str_cat(op, ": ", which, " must be ", dtype_name(expected), ", got ", dtype_name(t.dtype())));
}

}  // namespace livernet
