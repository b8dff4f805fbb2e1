// CUDA device context: the stream per device, device properties, memory allocators (the cuBLAS and
// cuDNN handles are the kernels' own: kernels/cuda/handles.h).
// Only compiled in CUDA builds (LIVERNET_WITH_CUDA).
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "core/allocator.h"
#include "core/cuda/cuda_check.h"

namespace livernet::cuda {

// Number of devices; on failure 0 and the runtime's message in *reason.
int device_count(std::string* reason = nullptr);

// The stream livernet issues work to on `device`: one non-blocking stream per device, shared by every
// thread (created on first use), which CUDA graphs can capture.
cudaStream_t current_stream(int device);
// The current device of this thread (cudaGetDevice), and a guard that switches it for a scope.
int current_device();
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_;
};
// Waits for all work on the current stream of `device`.
void synchronize(int device);

Allocator& device_allocator(int device);
Allocator& pinned_allocator();

// One training step (or any device work) recorded once as a CUDA graph and replayed with one launch.
// Between begin_capture and end_capture the work queued on the device's current stream is recorded, not
// run, and every device allocation comes from a pool private to the graph: tensors made while capturing
// keep their memory, which each replay rewrites, and no other tensor ever gets it. What is captured must
// be capturable: no host synchronisation or device-to-host read, no copy from pageable host memory, no
// cuDNN algorithm search (run the step once before capturing).
class StepGraph {
 public:
  explicit StepGraph(int device);
  ~StepGraph();
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;
  void begin_capture();
  void end_capture();
  // Ends a capture that failed part-way (the graph stays empty).
  void abort_capture() noexcept;
  void replay();

 private:
  int device_;
  StreamId pool_ = 0;
  cudaStream_t stream_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  bool capturing_ = false;
};

// Device properties cached per device.
const cudaDeviceProp& device_properties(int device);

}  // namespace livernet::cuda

namespace livernet::cuda {
// Copies nbytes between any two of host / device memory on the device's current stream. When it returns,
// the source may be changed and the destination is ready for the host (device-to-host) or for later
// work on the stream (host-to-device, device-to-device): only device-to-host copies and copies from
// pinned host memory wait for the device.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes);
// Queues a copy from pinned host memory to `device` without waiting; returns an event (opaque) that
// wait_and_destroy_copy_event waits for before the source may be reused.
void* copy_from_pinned_async(void* dst, int device, const void* src, std::size_t nbytes);
void wait_and_destroy_copy_event(void* event);
}  // namespace livernet::cuda
