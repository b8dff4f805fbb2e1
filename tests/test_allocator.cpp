// Allocators: the caching allocator's reuse, stream separation, statistics and out-of-memory path
// (on a fake backend, so it runs everywhere), the CPU allocator, and the CUDA allocator on a GPU.
#include <gtest/gtest.h>

#include <set>

#include "core/allocator.h"
#include "core/tensor.h"
#include "core/work_counters.h"
#include "kernels/elementwise.h"
#include "kernels/tensor_ops.h"
#include "test_util.h"

using namespace livernet;

namespace {

// Hands out host memory up to a capacity and records every call.
class FakeBackend final : public RawMemoryBackend {
 public:
  explicit FakeBackend(std::size_t capacity, std::size_t* in_use) : capacity_(capacity), in_use_(in_use) {}
  void* raw_alloc(std::size_t n) override {
    if (*in_use_ + n > capacity_) return nullptr;
    *in_use_ += n;
    void* p = aligned_alloc64(n);
    sizes_[p] = n;
    return p;
  }
  void raw_free(void* p) override {
    *in_use_ -= sizes_.at(p);
    sizes_.erase(p);
    aligned_free64(p);
  }
  std::string name() const override { return "fake device"; }
  std::string oom_details() const override { return " (fake details)"; }

 private:
  std::size_t capacity_;
  std::size_t* in_use_;
  std::map<void*, std::size_t> sizes_;
};

}  // namespace

TEST(CachingAllocator, RoundsToBins) {
  EXPECT_EQ(CachingAllocator::round_size(1), 512u);
  EXPECT_EQ(CachingAllocator::round_size(512), 512u);
  EXPECT_EQ(CachingAllocator::round_size(513), 1024u);
  EXPECT_EQ(CachingAllocator::round_size((1u << 20) + 1), (1u << 20) + (1u << 18));
  EXPECT_EQ(CachingAllocator::round_size(3u << 20), 3u << 20);
  for (std::size_t n : {std::size_t{1} << 20, std::size_t{5'000'000}, std::size_t{123'456'789}}) {
    const std::size_t r = CachingAllocator::round_size(n);
    EXPECT_GE(r, n);
    EXPECT_LE(static_cast<double>(r), 1.25 * static_cast<double>(n));
  }
}

TEST(CachingAllocator, ReusesFreedBlocksOfTheSameBinAndStream) {
  std::size_t in_use = 0;
  StreamId stream = 1;
  CachingAllocator a(std::make_unique<FakeBackend>(1 << 24, &in_use), [&] { return stream; });
  void* p = a.allocate(1000);
  a.deallocate(p);
  void* q = a.allocate(900);  // same 1024-byte bin
  EXPECT_EQ(p, q);
  stream = 2;
  void* r = a.allocate(1000);  // other stream: a fresh block
  EXPECT_NE(r, q);
  a.deallocate(q);
  a.deallocate(r);
  const AllocatorStats s = a.stats();
  EXPECT_EQ(s.num_allocs, 3);
  EXPECT_EQ(s.num_frees, 3);
  EXPECT_EQ(s.num_cache_hits, 1);
  EXPECT_EQ(s.num_raw_allocs, 2);
  EXPECT_EQ(s.allocated_bytes, 0);
  EXPECT_EQ(s.reserved_bytes, 2048);
  EXPECT_EQ(s.peak_allocated_bytes, 2048);
  a.empty_cache();
  EXPECT_EQ(a.stats().reserved_bytes, 0);
  EXPECT_EQ(in_use, 0u) << "empty_cache returns everything to the backend";
}

TEST(CachingAllocator, SteadyStateLoopAllocatesNothingNew) {
  std::size_t in_use = 0;
  CachingAllocator a(std::make_unique<FakeBackend>(1 << 26, &in_use), nullptr);
  const std::size_t sizes[] = {4096, 100000, 3 << 20, 777, 4096};
  for (int step = 0; step < 10; ++step) {
    std::vector<void*> live;
    for (std::size_t n : sizes) live.push_back(a.allocate(n));
    std::set<void*> distinct(live.begin(), live.end());
    ASSERT_EQ(distinct.size(), live.size()) << "live blocks never alias";
    for (void* p : live) a.deallocate(p);
  }
  EXPECT_EQ(a.stats().num_raw_allocs, 5) << "only the first step reaches the backend";
  EXPECT_EQ(a.stats().num_cache_hits, 45);
}

TEST(CachingAllocator, FreesTheCacheAndRetriesBeforeReportingOutOfMemory) {
  std::size_t in_use = 0;
  CachingAllocator a(std::make_unique<FakeBackend>(3 << 20, &in_use), nullptr);
  void* p = a.allocate(2 << 20);
  a.deallocate(p);  // cached: the backend still counts it
  void* q = a.allocate(3 << 20);  // only fits once the cache is released
  EXPECT_NE(q, nullptr);
  EXPECT_EQ(a.stats().reserved_bytes, 3 << 20);
  try {
    (void)a.allocate(1 << 20);
    FAIL() << "expected OutOfMemoryError";
  } catch (const OutOfMemoryError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("fake device out of memory"), std::string::npos) << msg;
    EXPECT_NE(msg.find("1.0 MiB"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(fake details)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("smaller batch"), std::string::npos) << msg;
  }
  a.deallocate(q);
  EXPECT_THROW(a.deallocate(reinterpret_cast<void*>(0x1234)), Error);
}

TEST(CachingAllocator, PeakStatisticsReset) {
  std::size_t in_use = 0;
  CachingAllocator a(std::make_unique<FakeBackend>(1 << 24, &in_use), nullptr, /*caching=*/false);
  void* p = a.allocate(1 << 20);
  void* q = a.allocate(1 << 20);
  a.deallocate(p);
  EXPECT_EQ(a.stats().peak_allocated_bytes, 2 << 20);
  a.reset_peak_stats();
  EXPECT_EQ(a.stats().peak_allocated_bytes, 1 << 20);
  a.deallocate(q);
  EXPECT_EQ(in_use, 0u) << "non-caching mode frees immediately";
}

TEST(CpuAllocator, TensorsReleaseTheirMemory) {
  Allocator& cpu = cpu_allocator();
  const std::int64_t before = cpu.stats().allocated_bytes;
  {
    Tensor t = zeros(Shape{1000, 1000});
    EXPECT_GE(cpu.stats().allocated_bytes - before, 4'000'000);
    Tensor view = t.reshape({-1});
    t = Tensor();
    EXPECT_GE(cpu.stats().allocated_bytes - before, 4'000'000) << "a view keeps the storage alive";
  }
  EXPECT_EQ(cpu.stats().allocated_bytes, before);
}

TEST(CudaAllocator, CachesDeviceMemory) {
  LN_REQUIRE_CUDA();
  Allocator& g = allocator_for(Device::cuda());
  g.empty_cache();
  const AllocatorStats s0 = g.stats();
  for (int i = 0; i < 5; ++i) {
    Tensor t = zeros(Shape{256, 1024}, DType::f32, Device::cuda());
  }
  const AllocatorStats s1 = g.stats();
  EXPECT_EQ(s1.num_raw_allocs - s0.num_raw_allocs, 1) << "one cudaMalloc, then reuse";
  EXPECT_EQ(s1.allocated_bytes, s0.allocated_bytes);
  EXPECT_GE(s1.reserved_bytes - s0.reserved_bytes, 1 << 20);
  g.empty_cache();
  EXPECT_EQ(g.stats().reserved_bytes, g.stats().allocated_bytes) << "after empty_cache only live blocks stay reserved";
  // Pinned host memory for transfers.
  Allocator& pinned = pinned_host_allocator();
  void* p = pinned.allocate(1 << 16);
  EXPECT_NE(p, nullptr);
  pinned.deallocate(p);
}

TEST(CachingAllocator, ReleasedPoolReturnsItsBlocksAndIsNeverReusedByOthers) {
  // A CUDA graph's private pool (cuda::StepGraph) is a stream id of its own: its blocks are reused only
  // inside that pool, and once the pool is released they go back to the backend, also those freed later.
  std::size_t in_use = 0;
  StreamId current = 1;
  const StreamId pool = (StreamId{1} << 63) | 7;
  CachingAllocator a(std::make_unique<FakeBackend>(1 << 24, &in_use), [&] { return current; });
  current = pool;
  void* kept = a.allocate(4096);   // e.g. a gradient that outlives the capture
  void* temp = a.allocate(8192);   // an activation freed during the capture
  a.deallocate(temp);
  current = 1;
  void* outside = a.allocate(8192);  // same bin, another stream: must not get the pool's block
  EXPECT_NE(outside, temp);
  a.deallocate(outside);
  EXPECT_EQ(in_use, 4096u + 8192u + 8192u);
  a.release_pool(pool);
  EXPECT_EQ(in_use, 4096u + 8192u) << "the pool's cached block went back; the stream's own stays cached";
  a.deallocate(kept);
  EXPECT_EQ(in_use, 8192u) << "a block of a released pool goes back to the backend when freed";
  current = pool;
  void* again = a.allocate(4096);  // a released id is not cached again
  a.deallocate(again);
  EXPECT_EQ(in_use, 8192u);
  const AllocatorStats st = a.stats();
  EXPECT_EQ(st.allocated_bytes, 0);
  EXPECT_EQ(st.reserved_bytes, 8192);
}

TEST(PinnedCopy, CpuTargetCopiesAtOnceAndNeedsMatchingTensors) {
  const Tensor src = arange(0, 10);
  Tensor dst = zeros(Shape{10});
  PendingCopy c = copy_from_pinned(dst, src);
  c.wait();
  EXPECT_EQ(dst.to_vector<float>(), src.to_vector<float>());
  Tensor wrong = zeros(Shape{9});
  EXPECT_THROW(copy_from_pinned(wrong, src), Error);
}

TEST(PinnedCopy, CudaUploadIsOrderedOnTheStreamAndCountsNoSyncUntilWaited) {
  LN_REQUIRE_CUDA();
  Allocator& pinned = pinned_host_allocator();
  const std::int64_t n = 1 << 20;
  Tensor host = Tensor::from_blob(pinned.allocate(n * 4), Shape{n}, DType::f32, Device::cpu(),
                                  [](void* p) { pinned_host_allocator().deallocate(p); });
  float* h = host.data<float>();
  for (std::int64_t i = 0; i < n; ++i) h[i] = static_cast<float>(i % 1000);
  Tensor dev = Tensor::empty(Shape{n}, DType::f32, Device::cuda());
  const DeviceWorkCounts c0 = device_work_counts();
  PendingCopy c = copy_from_pinned(dev, host);
  EXPECT_EQ((device_work_counts() - c0).host_syncs, 0) << "queuing the upload must not wait";
  const Tensor doubled = kernels::scale(dev, 2.f);  // work queued after the upload sees the data
  c.wait();
  const std::vector<float> v = doubled.to_vector<float>();
  for (std::int64_t i = 0; i < n; i += 997) ASSERT_EQ(v[i], 2.f * static_cast<float>(i % 1000)) << i;
}
