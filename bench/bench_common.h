// Helpers for the Google Benchmark micro-benchmarks.
#pragma once

#include <benchmark/benchmark.h>

#include "core/device.h"
#include "core/tensor.h"

#if defined(LIVERNET_WITH_CUDA)
#include "core/cuda/cuda_context.h"
#endif

namespace livernet::bench {

// Waits for queued device work so that the timed region covers it.
inline void sync(Device d) {
#if defined(LIVERNET_WITH_CUDA)
  if (d.is_cuda()) livernet::cuda::synchronize(d.index);
#else
  (void)d;
#endif
}

// Skips a CUDA benchmark with a reason when there is no device.
inline bool skip_without_device(benchmark::State& state, Device d) {
  if (d.is_cuda() && cuda_device_count() == 0) {
    state.SkipWithError(("no CUDA device: " + cuda_unavailable_reason()).c_str());
    return true;
  }
  return false;
}

inline Device device_arg(std::int64_t v) { return v == 0 ? Device::cpu() : Device::cuda(0); }

}  // namespace livernet::bench
