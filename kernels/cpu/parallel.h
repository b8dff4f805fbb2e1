// OpenMP helpers for the CPU kernels.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace livernet::kernels::cpu {

// Below this many elements a loop runs on one thread: spawning costs more than it saves.
inline constexpr std::int64_t kParallelGrain = 1 << 15;

// Calls fn(begin, end) on contiguous chunks of [0, n), in parallel when n is large enough.
template <typename Fn>
void parallel_for(std::int64_t n, Fn&& fn, std::int64_t grain = kParallelGrain) {
  if (n <= 0) return;
  if (n <= grain || omp_get_max_threads() == 1 || omp_in_parallel()) {
    fn(std::int64_t{0}, n);
    return;
  }
  const std::int64_t chunks = std::min<std::int64_t>(omp_get_max_threads(), (n + grain - 1) / grain);
#pragma omp parallel for schedule(static) num_threads(static_cast<int>(chunks))
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    fn(b, e);
  }
}

}  // namespace livernet::kernels::cpu
