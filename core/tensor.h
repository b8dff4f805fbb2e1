// Tensor: a shaped, typed view of contiguous memory on one device, with shared ownership.
//
// Layout: always dense and row-major over the logical dimensions; image tensors are NHWC, so the
// channel dimension is the fastest-moving one. Views (reshape, slice0) share the storage.
//
// Methods on Tensor are raw data operations and never record autograd history: differentiable math
// lives in layers/functional.h. The autograd state (requires_grad, grad, grad_fn) is stored here so
// that the tape (autograd/autograd.h) can reach it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/half.h"
#include "core/shape.h"
#include "core/storage.h"

namespace livernet {

class Node;
class Tensor;

template <typename T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::f32;
  else if constexpr (std::is_same_v<T, bf16>) return DType::bf16;
  else if constexpr (std::is_same_v<T, f16>) return DType::f16;
  else if constexpr (std::is_same_v<T, std::int32_t>) return DType::i32;
  else if constexpr (std::is_same_v<T, std::int64_t>) return DType::i64;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return DType::u8;
  else static_assert(sizeof(T) == 0, "no livernet dtype for this C++ type");
}

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  std::size_t offset = 0;  // bytes into storage
  Shape shape;
  DType dtype = DType::f32;
  // autograd
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<Node> grad_fn;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation ------------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  // Copies host values into a new tensor of T's dtype on `device`.
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device = Device::cpu());
  // Wraps memory owned elsewhere (no copy); `deleter` runs when the last view dies.
  static Tensor from_blob(void* data, const Shape& shape, DType dtype, Device device,
                          std::function<void(void*)> deleter = {});

  // ---- metadata --------------------------------------------------------------------------------
  bool defined() const { return static_cast<bool>(impl_); }
  const Shape& shape() const;
  int dim() const { return shape().size(); }
  std::int64_t size(int d) const { return shape().at(d); }
  std::int64_t numel() const { return shape().numel(); }
  DType dtype() const;
  Device device() const;
  bool is_cpu() const { return device().is_cpu(); }
  bool is_cuda() const { return device().is_cuda(); }
  std::size_t element_size() const { return dtype_size(dtype()); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * element_size(); }
  void* data_ptr() const;
  template <typename T>
  T* data() const;
  const std::shared_ptr<Storage>& storage() const;
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  // True when both tensors view overlapping bytes of one storage.
  bool shares_memory_with(const Tensor& other) const;

  // ---- copies and conversions (raw: no autograd) --------------------------------------------------
  Tensor to(Device device) const;  // *this when already there
  Tensor clone() const;
  // A view with a new shape and the same number of elements; one extent may be -1.
  Tensor reshape(const std::vector<std::int64_t>& shape) const;
  Tensor view(const Shape& shape) const;  // reshape to an exact shape
  // A view of rows [start, end) of dimension 0.
  Tensor slice0(std::int64_t start, std::int64_t end) const;
  // Host copy of the values converted to T.
  template <typename T>
  std::vector<T> to_vector() const;
  // The only value of a one-element tensor.
  double item() const;
  // "Tensor[2, 3] f32 cpu min=... max=... mean=..." (values only for floating tensors).
  std::string summary() const;

  // ---- autograd ------------------------------------------------------------------------------------
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  // Marks a leaf tensor as a parameter whose gradient is accumulated in .grad() (backward, autograd/autograd.h).
  Tensor& requires_grad_(bool on = true);
  Tensor grad() const;
  void set_grad(const Tensor& g);
  const std::shared_ptr<Node>& grad_fn() const;
  bool is_leaf() const { return !impl_ || !impl_->grad_fn; }
  // Same storage, no history.
  Tensor detach() const;

 private:
  void check_defined(const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

// A tensor owned elsewhere (a module's parameter or buffer) with its dotted name: what modules list
// (Module::named_parameters) and optimizers update.
struct NamedTensor {
  std::string name;
  Tensor* tensor;
};

// A host-to-device copy that the host did not wait for (copy_from_pinned): wait() returns once it has
// run, after which its source may be changed or freed. The destructor waits too.
class PendingCopy {
 public:
  PendingCopy() = default;
  explicit PendingCopy(void* event) : event_(event) {}
  PendingCopy(PendingCopy&& o) noexcept : event_(o.event_) { o.event_ = nullptr; }
  PendingCopy& operator=(PendingCopy&& o) noexcept;
  PendingCopy(const PendingCopy&) = delete;
  PendingCopy& operator=(const PendingCopy&) = delete;
  ~PendingCopy();
  void wait();

 private:
  void* event_ = nullptr;  // a CUDA event, recorded after the copy
};

// dst = src for src in page-locked host memory (pinned_host_allocator) and dst on a CUDA device, same
// dtype and number of elements: queued on dst's stream without waiting (work queued later sees the
// data), as a DataLoader with pin_memory does. src must stay alive and unchanged until the returned copy
// has been waited for. With a CPU dst it is a plain copy, already done on return.
PendingCopy copy_from_pinned(Tensor& dst, const Tensor& src);

// Throws an Error naming both sides when a and b differ in shape / dtype / device.
void check_same_shape(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_dtype(const char* op, const Tensor& t, DType expected, const char* which = "input");

// ---- template definitions --------------------------------------------------------------------------
template <typename T>
T* Tensor::data() const {
  if (dtype() != dtype_of<T>()) {
    throw Error(str_cat("tensor holds ", dtype_name(dtype()), " but was read as ", dtype_name(dtype_of<T>())));
  }
  return static_cast<T*>(data_ptr());
}

namespace detail {
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes);
std::vector<double> to_double_vector(const Tensor& t);
}  // namespace detail

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  LN_CHECK(static_cast<std::int64_t>(values.size()) == shape.numel(), "from_vector: ", values.size(),
           " values for shape ", shape.str(), " (", shape.numel(), " elements)");
  Tensor t = empty(shape, dtype_of<T>(), device);
  detail::copy_bytes(t.data_ptr(), device, values.data(), Device::cpu(), values.size() * sizeof(T));
  return t;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  std::vector<double> d = detail::to_double_vector(*this);
  std::vector<T> out(d.size());
  for (std::size_t i = 0; i < d.size(); ++i) {
    if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) {
      out[i] = T(static_cast<float>(d[i]));
    } else {
      out[i] = static_cast<T>(d[i]);
    }
  }
  return out;
}

}  // namespace livernet
