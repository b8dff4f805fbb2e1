// core/device_backend.h: core drives a device only through a backend that registers itself. A fake
// backend over host memory stands in for a GPU, so the device paths of core (allocation, copies both ways
// and between devices, pinned copies, graphs, device selection, tools/info's lines) run on every machine;
// and in CUDA builds the real backend must be registered in a program that links the engine.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "core/allocator.h"
#include "core/device_backend.h"
#include "core/graph.h"
#include "core/tensor.h"
#include "core/version.h"
#include "test_util.h"

using namespace livernet;
using livernet::testing::error_of;

// Fails unless `expr` throws a livernet::Error whose message contains `text`.
#define EXPECT_THROW_MSG(expr, text) \
  EXPECT_NE(error_of([&] { (void)(expr); }).find(text), std::string::npos) << error_of([&] { (void)(expr); })

namespace {

class HostMemory final : public RawMemoryBackend {
 public:
  explicit HostMemory(std::string name) : name_(std::move(name)) {}
  void* raw_alloc(std::size_t n) override { return aligned_alloc64(n); }
  void raw_free(void* p) override { aligned_free64(p); }
  std::string name() const override { return name_; }

 private:
  std::string name_;
};

struct Copy {
  Device dst, src;
  std::size_t nbytes;
};

// Two "devices" in host memory; records what core asks of it.
class FakeBackend final : public DeviceBackend {
 public:
  FakeBackend()
      : device0_(std::make_unique<HostMemory>("fake device 0"), nullptr),
        device1_(std::make_unique<HostMemory>("fake device 1"), nullptr),
        pinned_(std::make_unique<HostMemory>("fake pinned"), nullptr) {}
  int device_count(std::string* why) override {
    if (why) why->clear();
    return 2;
  }
  Allocator& device_allocator(int device) override { return device == 0 ? device0_ : device1_; }
  Allocator& pinned_host_allocator() override { return pinned_; }
  void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes) override {
    copies.push_back({dst_device, src_device, nbytes});
    std::memcpy(dst, src, nbytes);
  }
  void* copy_from_pinned_async(void* dst, int device, const void* src, std::size_t nbytes) override {
    copies.push_back({Device::cuda(device), Device::cpu(), nbytes});
    std::memcpy(dst, src, nbytes);
    return &pending_;
  }
  void wait_copy(void* token) override {
    EXPECT_EQ(token, &pending_);
    ++waits;
  }
  std::unique_ptr<DeviceGraph> capture_graph(int device, const std::function<void()>& fn) override {
    struct Replay final : DeviceGraph {
      std::function<void()> fn;
      void replay() override { fn(); }
    };
    captured_on = device;
    fn();
    auto g = std::make_unique<Replay>();
    g->fn = fn;
    return g;
  }
  std::string build_info() override { return "  fake backend: 2 devices in host memory\n"; }

  std::vector<Copy> copies;
  int waits = 0;
  int captured_on = -1;

 private:
  CachingAllocator device0_, device1_, pinned_;
  int pending_ = 0;
};

// Installs a backend for one test and puts back whatever was there (the CUDA backend in CUDA builds).
class WithBackend {
 public:
  explicit WithBackend(DeviceBackend* b) : previous_(register_device_backend(DeviceType::CUDA, b)) {}
  ~WithBackend() { register_device_backend(DeviceType::CUDA, previous_); }

 private:
  DeviceBackend* previous_;
};

}  // namespace

TEST(DeviceBackend, CudaBackendIsRegisteredInCudaBuilds) {
  // The registration is a static initialiser of core/cuda/: a static link that dropped it would leave a
  // CUDA build that silently has no GPU.
#if defined(LIVERNET_WITH_CUDA)
  ASSERT_NE(device_backend(DeviceType::CUDA), nullptr);
  EXPECT_NE(build_info().find("CUDA backend: built"), std::string::npos) << build_info();
  if (cuda_device_count() == 0) {
    EXPECT_NE(cuda_unavailable_reason().find("CUDA"), std::string::npos);
  }
#else
  EXPECT_EQ(device_backend(DeviceType::CUDA), nullptr);
  EXPECT_NE(build_info().find("CUDA backend: not built"), std::string::npos) << build_info();
  EXPECT_NE(cuda_unavailable_reason().find("built without CUDA"), std::string::npos);
#endif
  EXPECT_EQ(device_backend(DeviceType::CPU), nullptr);
  EXPECT_THROW(register_device_backend(DeviceType::CPU, nullptr), Error);
}

TEST(DeviceBackend, WithoutABackendGpuDevicesAreRefusedClearly) {
  WithBackend none(nullptr);
  EXPECT_EQ(cuda_device_count(), 0);
  EXPECT_EQ(resolve_device("auto"), Device::cpu());
  EXPECT_THROW_MSG(Tensor::empty({2}, DType::f32, Device::cuda(0)), "use --device cpu");
  EXPECT_THROW_MSG(resolve_device("cuda"), "built without CUDA");
  EXPECT_THROW_MSG(DeviceGraph::capture(Device::cuda(0), [] {}), "built without CUDA");
  EXPECT_EQ(&pinned_host_allocator(), &cpu_allocator());
  EXPECT_NE(build_info().find("CUDA backend: not built"), std::string::npos);
}

TEST(DeviceBackend, CoreDrivesARegisteredDeviceThroughTheInterface) {
  FakeBackend fake;
  WithBackend installed(&fake);
  EXPECT_EQ(cuda_device_count(), 2);
  EXPECT_EQ(cuda_unavailable_reason(), "");
  EXPECT_EQ(resolve_device("auto"), Device::cuda(0));
  EXPECT_EQ(resolve_device("cuda:1"), Device::cuda(1));
  EXPECT_THROW_MSG(resolve_device("cuda:2"), "only 2 CUDA device(s) exist");
  EXPECT_NE(build_info().find("fake backend"), std::string::npos);

  std::vector<float> values(12);
  std::iota(values.begin(), values.end(), 1.0f);
  const Tensor host = Tensor::from_vector(values, {3, 4});
  {
    // Host -> device 1 -> device 0 -> host, each through the backend's allocator and copy.
    const Tensor on1 = host.to(Device::cuda(1));
    EXPECT_EQ(on1.device(), Device::cuda(1));
    EXPECT_EQ(fake.device_allocator(1).stats().num_allocs, 1);
    const Tensor on0 = on1.to(Device::cuda(0));
    const Tensor back = on0.to(Device::cpu());
    EXPECT_EQ(back.to_vector<float>(), values);
    ASSERT_EQ(fake.copies.size(), 3u);
    EXPECT_EQ(fake.copies[0].dst, Device::cuda(1));
    EXPECT_EQ(fake.copies[0].src, Device::cpu());
    EXPECT_EQ(fake.copies[1].dst, Device::cuda(0));
    EXPECT_EQ(fake.copies[1].src, Device::cuda(1));
    EXPECT_EQ(fake.copies[2].dst, Device::cpu());
    EXPECT_EQ(fake.copies[2].nbytes, 48u);
    EXPECT_EQ(on0.clone().to_vector<float>(), values);  // device to device on one device
  }
  EXPECT_EQ(fake.device_allocator(1).stats().allocated_bytes, 0);  // freed through the backend's allocator

  // Pinned host memory comes from the backend, and a pinned copy is waited for through it.
  Allocator& pinned = pinned_host_allocator();
  EXPECT_EQ(&pinned, &fake.pinned_host_allocator());
  void* p = pinned.allocate(host.nbytes());
  std::memcpy(p, host.data_ptr(), host.nbytes());
  const Tensor src = Tensor::from_blob(p, {3, 4}, DType::f32, Device::cpu(), [&pinned](void* q) { pinned.deallocate(q); });
  Tensor dst = Tensor::empty({3, 4}, DType::f32, Device::cuda(0));
  {
    PendingCopy copy = copy_from_pinned(dst, src);
    EXPECT_EQ(fake.waits, 0);
  }
  EXPECT_EQ(fake.waits, 1);  // the destructor waited
  EXPECT_EQ(dst.to(Device::cpu()).to_vector<float>(), values);

  // Graphs: captured on the named device, replayed through the backend's graph.
  int runs = 0;
  auto graph = DeviceGraph::capture(Device::cuda(1), [&] { ++runs; });
  EXPECT_EQ(fake.captured_on, 1);
  graph->replay();
  EXPECT_EQ(runs, 2);
  EXPECT_THROW_MSG(DeviceGraph::capture(Device::cpu(), [] {}), "needs a CUDA device");
}
