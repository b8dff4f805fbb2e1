#include "core/storage.h"

#include "core/allocator.h"

namespace livernet {

Storage::Storage(std::size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (nbytes == 0) {
    require_device(device);
    return;
  }
  Allocator& alloc = allocator_for(device);
  data_ = alloc.allocate(nbytes);
  deleter_ = [&alloc](void* p) { alloc.deallocate(p); };
}

Storage::Storage(void* data, std::size_t nbytes, Device device, std::function<void(void*)> deleter)
    : data_(data), nbytes_(nbytes), device_(device), deleter_(std::move(deleter)) {}

Storage::~Storage() {
  if (data_ && deleter_) deleter_(data_);
}

}  // namespace livernet
