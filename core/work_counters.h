// How much the host waits for devices and how much device work it queues: two process-wide counters
// that the CUDA backend bumps and tools/bench reports per training step (a step that waits for the GPU
// more than once leaves it idle while the host catches up).
//  - host_syncs: the host blocked until queued device work had finished (a stream, device or event
//    synchronisation, or a device-to-host copy, which ends in one);
//  - launches: device work queued: livernet's own kernels, cuDNN / cuBLAS calls (one each, whatever the
//    library launches inside), copies and fills.
// CPU tensors count nothing.
#pragma once

#include <atomic>
#include <cstdint>

namespace livernet {

struct DeviceWorkCounts {
  std::int64_t host_syncs = 0;
  std::int64_t launches = 0;
  friend DeviceWorkCounts operator-(const DeviceWorkCounts& a, const DeviceWorkCounts& b) {
    return {a.host_syncs - b.host_syncs, a.launches - b.launches};
  }
};

namespace detail {
extern std::atomic<std::int64_t> g_host_syncs;
extern std::atomic<std::int64_t> g_launches;
}  // namespace detail

inline DeviceWorkCounts device_work_counts() {
  return {detail::g_host_syncs.load(std::memory_order_relaxed), detail::g_launches.load(std::memory_order_relaxed)};
}
inline void count_host_sync() { detail::g_host_syncs.fetch_add(1, std::memory_order_relaxed); }
inline void count_launches(std::int64_t n = 1) { detail::g_launches.fetch_add(n, std::memory_order_relaxed); }

}  // namespace livernet
