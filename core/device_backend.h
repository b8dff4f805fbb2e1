// The interface through which core drives a device it does not know itself. Core holds tensors, storage
// and allocators for every device, but the code that talks to a GPU runtime lives in a backend library
// above it (the CUDA backend: core/cuda/, library livernet_core_cuda), which registers itself here when
// its library is loaded, as ATen's device guards do. Core calls nothing below it and tests no build
// macro: with no backend registered for a device type, that device does not exist for this program.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "core/device.h"

namespace livernet {

class Allocator;
class DeviceGraph;

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;
  // Usable devices of this type; 0 with the reason (the runtime's own message) in *why.
  virtual int device_count(std::string* why) = 0;
  // The memory of tensors on `device`, and the page-locked host memory that copies to it come from.
  virtual Allocator& device_allocator(int device) = 0;
  virtual Allocator& pinned_host_allocator() = 0;
  // Copies nbytes between host and device memory or between devices (at least one side is this
  // backend's). On return the source may be changed; a device-to-host copy is complete.
  virtual void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes) = 0;
  // Queues a copy from pinned host memory to `device` without waiting; returns a token for wait_copy.
  virtual void* copy_from_pinned_async(void* dst, int device, const void* src, std::size_t nbytes) = 0;
  // Waits for a copy queued by copy_from_pinned_async and releases its token.
  virtual void wait_copy(void* token) = 0;
  // Records the device work of fn() on `device` for replay (core/graph.h).
  virtual std::unique_ptr<DeviceGraph> capture_graph(int device, const std::function<void()>& fn) = 0;
  // Lines for tools/info: the backend's build (runtime, architectures, libraries) and its devices.
  virtual std::string build_info() = 0;
};

// Installs `backend` (not owned; it must outlive every use) as the backend of `type`, or removes it with
// nullptr; returns the one it replaces. The CPU is core's own and takes no backend.
DeviceBackend* register_device_backend(DeviceType type, DeviceBackend* backend);
// The backend of `type`, or nullptr when none is linked into this program.
DeviceBackend* device_backend(DeviceType type);

}  // namespace livernet
