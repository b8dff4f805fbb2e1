#include "core/allocator.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "core/device_backend.h"

namespace livernet {

namespace {

std::string mib(std::int64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

class CpuBackend final : public RawMemoryBackend {
 public:
  void* raw_alloc(std::size_t nbytes) override { return aligned_alloc64(nbytes); }
  void raw_free(void* ptr) override { aligned_free64(ptr); }
  std::string name() const override { return "CPU"; }
};

// How the CPU allocator gets its memory: LIVERNET_CPU_ALLOC = heap (default) | bins | system.
//  heap:   glibc's heap with direct mmap and trimming switched off (mallopt, once, for the process): freed
//          blocks of every size coalesce and are reused best-fit, so a steady-state step neither faults in
//          fresh pages nor keeps one cached block per tensor size. At InceptionV3 299x299 batch 8 this
//          gave the same speed as the bins with 360 instead of 570 MiB peak RSS (forward), 1110 instead
//          of 1300 MiB (training) (`tools/bench --size 299 --batch 8 [--train]` on 2 cores, 2026-11-27).
//          Freed memory is kept by the process for later tensors, as the bins kept it.
//  bins:   livernet's free lists of exact sizes in front of aligned_alloc (the previous default).
//  system: every request to aligned_alloc/free as the C library is configured (also LIVERNET_CPU_CACHE=0,
//          and always under AddressSanitizer, which must see every allocation).
enum class CpuAllocMode { heap, bins, system };

CpuAllocMode cpu_alloc_mode() {
#if defined(__SANITIZE_ADDRESS__)
  return CpuAllocMode::system;
#else
  if (const char* old = std::getenv("LIVERNET_CPU_CACHE"); old && std::strcmp(old, "0") == 0) return CpuAllocMode::system;
  const char* env = std::getenv("LIVERNET_CPU_ALLOC");
  if (!env || !*env || std::strcmp(env, "heap") == 0) return CpuAllocMode::heap;
  if (std::strcmp(env, "bins") == 0) return CpuAllocMode::bins;
  if (std::strcmp(env, "system") == 0) return CpuAllocMode::system;
  std::fprintf(stderr, "livernet: LIVERNET_CPU_ALLOC='%s' is not heap, bins or system; using heap\n", printable(env).c_str());
  return CpuAllocMode::heap;
#endif
}

void use_glibc_heap() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_MAX, 0);                    // no chunk of its own per large block: all from the heap
  mallopt(M_TRIM_THRESHOLD, INT_MAX);        // keep freed memory for the next step
#endif
}

}  // namespace

void* aligned_alloc64(std::size_t nbytes) {
  const std::size_t rounded = (nbytes + 63) & ~std::size_t{63};
  return std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
}

void aligned_free64(void* ptr) { std::free(ptr); }

CachingAllocator::CachingAllocator(std::unique_ptr<RawMemoryBackend> backend,
                                   std::function<StreamId()> current_stream, bool caching)
    : backend_(std::move(backend)), current_stream_(std::move(current_stream)), caching_(caching) {}

CachingAllocator::~CachingAllocator() {
  // Live blocks at exit belong to tensors still alive in static objects; leave them to the process.
  std::lock_guard<std::mutex> lock(mu_);
  release_cached_locked();
}

std::size_t CachingAllocator::round_size(std::size_t nbytes) {
  constexpr std::size_t kSmall = 512, kLarge = std::size_t{1} << 20;
  if (nbytes == 0) return kSmall;
  if (nbytes < kLarge) return (nbytes + kSmall - 1) / kSmall * kSmall;
  const std::size_t step = std::bit_floor(nbytes) / 4;
  return (nbytes + step - 1) / step * step;
}

void* CachingAllocator::allocate(std::size_t nbytes) {
  return allocate_on(nbytes, current_stream_ ? current_stream_() : 0);
}

void* CachingAllocator::allocate_on(std::size_t nbytes, StreamId stream) {
  const std::size_t size = round_size(nbytes);
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.num_allocs;
  void* ptr = nullptr;
  if (caching_) {
    auto sit = free_.find(stream);
    if (sit != free_.end()) {
      auto bin = sit->second.find(size);
      if (bin != sit->second.end() && !bin->second.empty()) {
        ptr = bin->second.back();
        bin->second.pop_back();
        ++stats_.num_cache_hits;
      }
    }
  }
  if (!ptr) {
    ptr = backend_->raw_alloc(size);
    if (!ptr) {
      // Give every cached block back and try once more before failing.
      release_cached_locked();
      ptr = backend_->raw_alloc(size);
    }
    if (!ptr) {
      throw OutOfMemoryError(str_cat(backend_->name(), " out of memory: tried to allocate ", mib(static_cast<std::int64_t>(size)),
                                     " with ", mib(stats_.allocated_bytes), " already allocated by livernet",
                                     backend_->oom_details(), "; try a smaller batch size"));
    }
    ++stats_.num_raw_allocs;
    stats_.reserved_bytes += static_cast<std::int64_t>(size);
    stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.reserved_bytes);
  }
  live_.emplace(ptr, Block{size, stream});
  stats_.allocated_bytes += static_cast<std::int64_t>(size);
  stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  return ptr;
}

void CachingAllocator::deallocate(void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(ptr);
  LN_CHECK(it != live_.end(), backend_->name(), " allocator: freeing a pointer it did not allocate");
  const Block block = it->second;
  live_.erase(it);
  ++stats_.num_frees;
  stats_.allocated_bytes -= static_cast<std::int64_t>(block.size);
  const bool retired = std::find(retired_.begin(), retired_.end(), block.stream) != retired_.end();
  if (caching_ && !retired) {
    free_[block.stream][block.size].push_back(ptr);
  } else {
    backend_->raw_free(ptr);
    ++stats_.num_raw_frees;
    stats_.reserved_bytes -= static_cast<std::int64_t>(block.size);
  }
}

void CachingAllocator::release_cached_locked() {
  for (auto& [stream, bins] : free_) {
    for (auto& [size, ptrs] : bins) {
      for (void* p : ptrs) {
        backend_->raw_free(p);
        ++stats_.num_raw_frees;
        stats_.reserved_bytes -= static_cast<std::int64_t>(size);
      }
    }
  }
  free_.clear();
}

void CachingAllocator::release_pool(StreamId pool) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = free_.find(pool);
  if (it != free_.end()) {
    for (auto& [size, ptrs] : it->second) {
      for (void* p : ptrs) {
        backend_->raw_free(p);
        ++stats_.num_raw_frees;
        stats_.reserved_bytes -= static_cast<std::int64_t>(size);
      }
    }
    free_.erase(it);
  }
  if (std::find(retired_.begin(), retired_.end(), pool) == retired_.end()) retired_.push_back(pool);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cached_locked();
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::reset_peak_stats() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_allocated_bytes = stats_.allocated_bytes;
  stats_.peak_reserved_bytes = stats_.reserved_bytes;
}

Allocator& cpu_allocator() {
  static CachingAllocator* a = [] {
    const CpuAllocMode mode = cpu_alloc_mode();
    if (mode == CpuAllocMode::heap) use_glibc_heap();
    return new CachingAllocator(std::make_unique<CpuBackend>(), nullptr, mode == CpuAllocMode::bins);
  }();  // never destroyed: tensors in static objects may outlive any destruction order we could pick
  return *a;
}

Allocator& pinned_host_allocator() {
  if (cuda_device_count() > 0) return device_backend(DeviceType::CUDA)->pinned_host_allocator();
  return cpu_allocator();
}

Allocator& allocator_for(Device device) {
  if (device.is_cpu()) return cpu_allocator();
  require_device(device);  // so a backend exists and has this device
  return device_backend(device.type)->device_allocator(device.index);
}

}  // namespace livernet
