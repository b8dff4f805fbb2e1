// Shared helpers for the CUDA kernels.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "core/cuda/cuda_context.h"
#include "core/tensor.h"

namespace livernet::kernels::cuda {

// The device of `t` made current for the scope, and its current stream.
struct LaunchContext {
  explicit LaunchContext(const Tensor& t) : guard(t.device().index), device(t.device().index),
                                            stream(livernet::cuda::current_stream(t.device().index)) {}
  livernet::cuda::DeviceGuard guard;
  int device;
  cudaStream_t stream;
};

constexpr int kBlock = 256;

// Grid size for a grid-stride loop over n work items: enough blocks to fill the device several
// times over, never more than the work needs.
inline unsigned grid_for(std::int64_t n, int device, int block = kBlock) {
  const int sms = livernet::cuda::device_properties(device).multiProcessorCount;
  const std::int64_t needed = (n + block - 1) / block;
  return static_cast<unsigned>(std::max<std::int64_t>(1, std::min<std::int64_t>(needed, static_cast<std::int64_t>(sms) * 8)));
}

// Device-side element access through float.
template <typename T>
__device__ __forceinline__ float load_f(const T* p, std::int64_t i) {
  return to_float(p[i]);
}
template <typename T>
__device__ __forceinline__ void store_f(T* p, std::int64_t i, float v) {
  p[i] = from_float<T>(v);
}

// A group of VEC elements loaded/stored with one aligned memory instruction.
template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Vec {
  T v[VEC];
};

// How many elements to move per vector memory instruction (16 bytes) when every pointer allows it.
inline int vector_width(std::size_t elem_size, std::initializer_list<const void*> ptrs) {
  for (const void* p : ptrs)
    if (reinterpret_cast<std::uintptr_t>(p) % 16 != 0) return 1;
  return static_cast<int>(16 / elem_size);
}

}  // namespace livernet::kernels::cuda
