#include "core/cuda/cuda_context.h"

#include <cudnn_version.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/device_backend.h"
#include "core/graph.h"

#ifndef LIVERNET_CUDA_ARCHS
#define LIVERNET_CUDA_ARCHS ""
#endif

namespace livernet::cuda {

void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  throw Error(str_cat("CUDA error ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ") at ", file, ":", line,
                      " in ", expr));
}

int device_count(std::string* reason) {
  static int count = -1;
  static std::string why;
  static std::once_flag once;
  std::call_once(once, [] {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();  // clear the sticky error
      count = 0;
      why = str_cat("no usable CUDA device (", cudaGetErrorString(err), ")");
    } else {
      count = n;
      if (n == 0) why = "no CUDA device found";
    }
  });
  if (reason) *reason = why;
  return count;
}

namespace {

constexpr int kMaxDevices = 64;

struct DeviceState {
  // While a StepGraph captures on this device: the private pool its allocations come from (0: none).
  std::atomic<StreamId> capture_pool{0};
  std::once_flag stream_once;
  cudaStream_t default_stream = nullptr;
  std::once_flag alloc_once;
  CachingAllocator* allocator = nullptr;  // lives for the whole process (never destroyed: see kernels/cuda/handles.cpp)
  std::once_flag prop_once;
  cudaDeviceProp prop{};
};

DeviceState& state(int device) {
  static std::array<DeviceState, kMaxDevices>* states = new std::array<DeviceState, kMaxDevices>();
  LN_CHECK(device >= 0 && device < kMaxDevices, "CUDA device index ", device, " out of range");
  return (*states)[device];
}

class CudaBackend final : public RawMemoryBackend {
 public:
  explicit CudaBackend(int device) : device_(device) {}
  void* raw_alloc(std::size_t nbytes) override {
    DeviceGuard g(device_);
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, nbytes);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      return nullptr;
    }
    LN_CUDA_CHECK(err);
    return p;
  }
  void raw_free(void* ptr) override {
    DeviceGuard g(device_);
    // Cached blocks may still be in use by queued work on their stream: wait before handing back.
    LN_CUDA_CHECK(cudaDeviceSynchronize());
    count_host_sync();
    LN_CUDA_CHECK(cudaFree(ptr));
  }
  std::string name() const override { return str_cat("CUDA device ", device_); }
  std::string oom_details() const override {
    DeviceGuard g(device_);
    std::size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
      (void)cudaGetLastError();
      return "";
    }
    char buf[128];
    std::snprintf(buf, sizeof buf, " (the device has %.0f MiB free of %.0f MiB)", free_b / 1048576.0,
                  total_b / 1048576.0);
    return buf;
  }

 private:
  int device_;
};

class PinnedBackend final : public RawMemoryBackend {
 public:
  void* raw_alloc(std::size_t nbytes) override {
    void* p = nullptr;
    const cudaError_t err = cudaHostAlloc(&p, nbytes, cudaHostAllocDefault);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      return nullptr;
    }
    return p;
  }
  void raw_free(void* ptr) override { LN_CUDA_CHECK(cudaFreeHost(ptr)); }
  std::string name() const override { return "pinned host memory"; }
};

}  // namespace

int current_device() {
  int d = 0;
  LN_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

DeviceGuard::DeviceGuard(int device) : previous_(current_device()) {
  if (device != previous_) LN_CUDA_CHECK(cudaSetDevice(device));
}

DeviceGuard::~DeviceGuard() {
  int now = previous_;
  if (cudaGetDevice(&now) == cudaSuccess && now != previous_) (void)cudaSetDevice(previous_);
}

cudaStream_t current_stream(int device) {
  DeviceState& s = state(device);
  std::call_once(s.stream_once, [&] {
    DeviceGuard g(device);
    LN_CUDA_CHECK(cudaStreamCreateWithFlags(&s.default_stream, cudaStreamNonBlocking));
  });
  return s.default_stream;
}

void synchronize(int device) {
  DeviceGuard g(device);
  LN_CUDA_CHECK(cudaStreamSynchronize(current_stream(device)));
  count_host_sync();
}

Allocator& device_allocator(int device) {
  DeviceState& s = state(device);
  std::call_once(s.alloc_once, [&] {
    s.allocator = new CachingAllocator(std::make_unique<CudaBackend>(device), [device] {
      const StreamId pool = state(device).capture_pool.load(std::memory_order_relaxed);
      return pool != 0 ? pool : reinterpret_cast<StreamId>(current_stream(device));
    });
  });
  return *s.allocator;
}

Allocator& pinned_allocator() {
  static CachingAllocator* a = new CachingAllocator(std::make_unique<PinnedBackend>(), nullptr);
  return *a;
}

StepGraph::StepGraph(int device) : device_(device) {
  static std::atomic<StreamId> next{1};
  // Never a real stream's value (those are user-space addresses, below 2^63).
  pool_ = (StreamId{1} << 63) | next.fetch_add(1);
}

void StepGraph::begin_capture() {
  LN_CHECK(!exec_ && !capturing_, "StepGraph: already captured");
  DeviceGuard g(device_);
  StreamId expected = 0;
  LN_CHECK(state(device_).capture_pool.compare_exchange_strong(expected, pool_),
           "StepGraph: another graph is being captured on cuda:", device_);
  stream_ = current_stream(device_);
  // Relaxed: the caching allocator may call cudaMalloc while capturing (memory for the private pool).
  const cudaError_t err = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed);
  if (err != cudaSuccess) {
    state(device_).capture_pool.store(0);
    LN_CUDA_CHECK(err);
  }
  capturing_ = true;
}

void StepGraph::end_capture() {
  LN_CHECK(capturing_, "StepGraph: end_capture without begin_capture");
  DeviceGuard g(device_);
  capturing_ = false;
  state(device_).capture_pool.store(0);
  cudaGraph_t graph = nullptr;
  const cudaError_t err = cudaStreamEndCapture(stream_, &graph);
  if (err != cudaSuccess || graph == nullptr) {
    (void)cudaGetLastError();
    throw Error(str_cat("CUDA graph capture failed (", cudaGetErrorString(err),
                        "): the captured work did something a graph cannot hold (a host synchronisation, a copy "
                        "from pageable memory, or a cuDNN algorithm search)"));
  }
  const cudaError_t inst = cudaGraphInstantiate(&exec_, graph, 0);
  cudaGraphDestroy(graph);
  LN_CUDA_CHECK(inst);
}

void StepGraph::abort_capture() noexcept {
  if (!capturing_) return;
  capturing_ = false;
  state(device_).capture_pool.store(0);
  cudaGraph_t graph = nullptr;
  if (cudaStreamEndCapture(stream_, &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
  (void)cudaGetLastError();
}

void StepGraph::replay() {
  LN_CHECK(exec_, "StepGraph: replay before a capture");
  DeviceGuard g(device_);
  LN_CUDA_CHECK(cudaGraphLaunch(exec_, current_stream(device_)));
  count_launches();
}

StepGraph::~StepGraph() {
  abort_capture();
  if (exec_) {
    DeviceGuard g(device_);
    (void)cudaStreamSynchronize(current_stream(device_));  // a replay may still be running
    cudaGraphExecDestroy(exec_);
  }
  if (auto* a = dynamic_cast<CachingAllocator*>(&device_allocator(device_))) a->release_pool(pool_);
}

const cudaDeviceProp& device_properties(int device) {
  DeviceState& s = state(device);
  std::call_once(s.prop_once, [&] { LN_CUDA_CHECK(cudaGetDeviceProperties(&s.prop, device)); });
  return s.prop;
}

}  // namespace livernet::cuda

namespace livernet::cuda {

namespace {
// Whether host memory is page-locked (cudaHostAlloc / cudaHostRegister); pageable or unknown memory is not.
bool is_pinned_host(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeHost;
}
}  // namespace

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cuda() && src_device.is_cuda() && dst_device.index != src_device.index) {
    LN_CUDA_CHECK(cudaMemcpyPeer(dst, dst_device.index, src, src_device.index, nbytes));
    count_launches();
    count_host_sync();
    return;
  }
  const int dev = dst_device.is_cuda() ? dst_device.index : src_device.index;
  DeviceGuard g(dev);
  cudaStream_t s = current_stream(dev);
  LN_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, s));
  count_launches();
  // Device to device: ordered on the stream like a kernel; nothing to wait for.
  if (src_device.is_cuda() && dst_device.is_cuda()) return;
  // Host to device from pageable memory: the runtime has staged the source before returning, so the
  // caller may change or free it at once, and later work on the stream sees the data.
  if (dst_device.is_cuda() && !is_pinned_host(src)) return;
  // Device to host (the caller reads the result next), or from pinned memory, which the DMA reads
  // later: wait (copy_from_pinned_async is the form that does not).
  LN_CUDA_CHECK(cudaStreamSynchronize(s));
  count_host_sync();
}

void* copy_from_pinned_async(void* dst, int device, const void* src, std::size_t nbytes) {
  DeviceGuard g(device);
  cudaStream_t s = current_stream(device);
  cudaEvent_t done = nullptr;
  LN_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  if (nbytes > 0) {
    LN_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, s));
    count_launches();
  }
  LN_CUDA_CHECK(cudaEventRecord(done, s));
  return done;
}

void wait_and_destroy_copy_event(void* event) {
  auto e = static_cast<cudaEvent_t>(event);
  cudaError_t st = cudaEventQuery(e);
  if (st == cudaErrorNotReady) {
    st = cudaEventSynchronize(e);
    count_host_sync();
  }
  const cudaError_t destroyed = cudaEventDestroy(e);
  LN_CUDA_CHECK(st);
  LN_CUDA_CHECK(destroyed);
}

}  // namespace livernet::cuda

// ---- The CUDA backend of core (core/device_backend.h) ------------------------------------------------
namespace livernet::cuda {

namespace {

class CudaDeviceGraph final : public DeviceGraph {
 public:
  explicit CudaDeviceGraph(int device) : graph_(device) {}
  StepGraph& graph() { return graph_; }
  void replay() override { graph_.replay(); }

 private:
  StepGraph graph_;
};

class CudaDeviceBackend final : public DeviceBackend {
 public:
  int device_count(std::string* why) override { return cuda::device_count(why); }
  Allocator& device_allocator(int device) override { return cuda::device_allocator(device); }
  Allocator& pinned_host_allocator() override { return cuda::pinned_allocator(); }
  void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes) override {
    cuda::copy_bytes(dst, dst_device, src, src_device, nbytes);
  }
  void* copy_from_pinned_async(void* dst, int device, const void* src, std::size_t nbytes) override {
    return cuda::copy_from_pinned_async(dst, device, src, nbytes);
  }
  void wait_copy(void* token) override { wait_and_destroy_copy_event(token); }
  std::unique_ptr<DeviceGraph> capture_graph(int device, const std::function<void()>& fn) override {
    auto g = std::make_unique<CudaDeviceGraph>(device);
    g->graph().begin_capture();
    try {
      fn();
    } catch (...) {
      g->graph().abort_capture();
      throw;
    }
    g->graph().end_capture();
    return g;
  }
  std::string build_info() override {
    int rt = 0;
    (void)cudaRuntimeGetVersion(&rt);
    (void)cudaGetLastError();
    std::string s = str_cat("  CUDA backend: built (runtime ", rt / 1000, ".", (rt % 1000) / 10, ", architectures ",
                            LIVERNET_CUDA_ARCHS, ", cuDNN ", CUDNN_MAJOR, ".", CUDNN_MINOR, ".", CUDNN_PATCHLEVEL,
                            ")\n");
    std::string why;
    const int n = cuda::device_count(&why);
    if (n == 0) s += str_cat("  CUDA devices: none (", why, ")\n");
    for (int i = 0; i < n; ++i) {
      const cudaDeviceProp& p = device_properties(i);
      s += str_cat("  cuda:", i, ": ", p.name, ", sm_", p.major, p.minor, ", ", p.totalGlobalMem / (1024 * 1024),
                   " MiB, ", p.multiProcessorCount, " SMs\n");
    }
    return s;
  }
};

// Registered while the program starts. It sits in the file that defines current_stream(), which every
// CUDA kernel calls, so a static link that pulls in any CUDA op also pulls in the registration
// (tests: DeviceBackend.CudaBackendIsRegisteredInCudaBuilds).
const bool registered = [] {
  // Never destroyed, like the allocators: tensors in static objects may outlive any order we could pick.
  register_device_backend(DeviceType::CUDA, new CudaDeviceBackend());
  return true;
}();

}  // namespace

}  // namespace livernet::cuda
