// CUDA device context: current stream per device, library handles bound to it, memory allocators.
// Only compiled in CUDA builds (LIVERNET_WITH_CUDA).
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>

#include "core/allocator.h"
#include "core/cuda/cuda_check.h"

namespace livernet::cuda {

// Number of devices; on failure 0 and the runtime's message in *reason.
int device_count(std::string* reason = nullptr);

// The stream livernet issues work to on `device` from this thread. By default every thread shares one
// non-blocking stream per device (created on first use), which CUDA graphs can capture.
cudaStream_t current_stream(int device);
void set_current_stream(int device, cudaStream_t stream);
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
// Makes `stream` the current stream of `device` for a scope.
class StreamGuard {
 public:
  StreamGuard(int device, cudaStream_t stream);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  int device_;
  cudaStream_t previous_;
};

// Waits for all work on the current stream of `device`.
void synchronize(int device);

// Library handles for this thread and device, bound to the current stream.
cublasHandle_t cublas_handle(int device);
cublasLtHandle_t cublaslt_handle(int device);
cudnnHandle_t cudnn_handle(int device);

Allocator& device_allocator(int device);
Allocator& pinned_allocator();

// Device properties cached per device.
const cudaDeviceProp& device_properties(int device);

}  // namespace livernet::cuda

namespace livernet::cuda {
// Copies nbytes between any two of host / device memory and waits for the copy to finish.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes);
}  // namespace livernet::cuda
