// Memory allocators. Every tensor's memory comes from the allocator of its device:
//  - CPU: 64-byte aligned blocks from glibc's heap, set up (mmap and trimming off) so that freed blocks of
//    any size are reused and a steady-state step faults in no new pages (LIVERNET_CPU_ALLOC=bins: exact-size
//    free lists instead; =system: the C library as configured; see allocator.cpp);
//  - CUDA: a caching allocator with size-binned free lists per stream (no cudaMalloc per op);
//  - pinned host memory for fast transfers (CUDA builds).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/device.h"

namespace livernet {

struct AllocatorStats {
  std::int64_t allocated_bytes = 0;       // in live blocks (rounded sizes)
  std::int64_t reserved_bytes = 0;        // obtained from the system/driver, live + cached
  std::int64_t peak_allocated_bytes = 0;
  std::int64_t peak_reserved_bytes = 0;
  std::int64_t num_allocs = 0;            // allocate() calls
  std::int64_t num_frees = 0;             // deallocate() calls
  std::int64_t num_cache_hits = 0;        // allocate() served from a free list
  std::int64_t num_raw_allocs = 0;        // calls into the system/driver
  std::int64_t num_raw_frees = 0;
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Never returns nullptr for nbytes > 0: throws OutOfMemoryError instead.
  virtual void* allocate(std::size_t nbytes) = 0;
  virtual void deallocate(void* ptr) = 0;
  virtual AllocatorStats stats() const = 0;
  virtual void reset_peak_stats() = 0;
  // Returns cached, unused blocks to the system/driver.
  virtual void empty_cache() {}
};

// Where a caching allocator gets its memory from.
class RawMemoryBackend {
 public:
  virtual ~RawMemoryBackend() = default;
  virtual void* raw_alloc(std::size_t nbytes) = 0;  // nullptr when out of memory
  virtual void raw_free(void* ptr) = 0;
  virtual std::string name() const = 0;             // "CPU", "CUDA device 0", ...
  virtual std::string oom_details() const { return ""; }
};

// Opaque stream identity (a cudaStream_t's value on CUDA, 0 on the CPU).
using StreamId = std::uintptr_t;

// Size-binned caching allocator: freed blocks go to the free list of (stream, size bin) and are handed
// out again to the next request of the same bin on the same stream. Reuse on the stream that freed the
// block is safe without synchronisation because work on one stream runs in order.
class CachingAllocator final : public Allocator {
 public:
  CachingAllocator(std::unique_ptr<RawMemoryBackend> backend, std::function<StreamId()> current_stream,
                   bool caching = true);
  ~CachingAllocator() override;

  void* allocate(std::size_t nbytes) override;
  void* allocate_on(std::size_t nbytes, StreamId stream);
  void deallocate(void* ptr) override;
  // Gives the cached blocks of one stream (or private pool, see cuda::StepGraph) back to the backend and
  // retires the id: blocks of it still in use go back to the backend when they are freed.
  void release_pool(StreamId pool);
  AllocatorStats stats() const override;
  void reset_peak_stats() override;
  void empty_cache() override;
  bool caching() const { return caching_; }

  // The bin a request of nbytes is served from: multiples of 512 B below 1 MiB; above, four bins per
  // power of two (at most 25 % slack).
  static std::size_t round_size(std::size_t nbytes);

 private:
  struct Block {
    std::size_t size;
    StreamId stream;
  };
  void release_cached_locked();

  std::unique_ptr<RawMemoryBackend> backend_;
  std::function<StreamId()> current_stream_;
  bool caching_;
  mutable std::mutex mu_;
  std::unordered_map<void*, Block> live_;
  std::unordered_map<StreamId, std::map<std::size_t, std::vector<void*>>> free_;
  std::vector<StreamId> retired_;
  AllocatorStats stats_;
};

// The allocator for a device (created on first use). Throws for an unavailable CUDA device.
Allocator& allocator_for(Device device);
Allocator& cpu_allocator();
// Page-locked host memory for transfers (a plain CPU allocator when built without CUDA).
Allocator& pinned_host_allocator();

// 64-byte aligned system allocation (nullptr on failure) and its release.
void* aligned_alloc64(std::size_t nbytes);
void aligned_free64(void* ptr);

}  // namespace livernet
