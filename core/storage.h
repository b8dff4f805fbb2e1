// A block of device or host memory shared by the tensors that view it.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "core/device.h"

namespace livernet {

class Storage {
 public:
  // Allocates nbytes from the device's allocator (nothing for 0 bytes).
  Storage(std::size_t nbytes, Device device);
  // Wraps memory owned elsewhere; `deleter` (may be empty) runs when the storage dies.
  Storage(void* data, std::size_t nbytes, Device device, std::function<void(void*)> deleter);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  std::size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  std::size_t nbytes_ = 0;
  Device device_;
  std::function<void(void*)> deleter_;
};

}  // namespace livernet
