#include "core/cuda/cuda_context.h"

#include <array>
#include <cstdio>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace livernet::cuda {

void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  throw Error(str_cat("CUDA error ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ") at ", file, ":", line,
                      " in ", expr));
}

void throw_cublas_error(cublasStatus_t st, const char* expr, const char* file, int line) {
  throw Error(str_cat("cuBLAS error ", cublasGetStatusName(st), " (", cublasGetStatusString(st), ") at ", file, ":",
                      line, " in ", expr));
}

void throw_cudnn_error(cudnnStatus_t st, const char* expr, const char* file, int line) {
  char detail[512] = {0};
  cudnnGetLastErrorString(detail, sizeof detail);
  throw Error(str_cat("cuDNN error ", cudnnGetErrorString(st), " at ", file, ":", line, " in ", expr,
                      detail[0] ? str_cat(": ", detail) : std::string()));
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
  std::once_flag stream_once;
  cudaStream_t default_stream = nullptr;
  std::once_flag alloc_once;
  CachingAllocator* allocator = nullptr;  // lives for the whole process (see the note on handles)
  std::once_flag prop_once;
  cudaDeviceProp prop{};
};

DeviceState& state(int device) {
  static std::array<DeviceState, kMaxDevices>* states = new std::array<DeviceState, kMaxDevices>();
  LN_CHECK(device >= 0 && device < kMaxDevices, "CUDA device index ", device, " out of range");
  return (*states)[device];
}

thread_local std::unordered_map<int, cudaStream_t> tls_streams;

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

struct Handles {
  cublasHandle_t cublas = nullptr;
  cublasLtHandle_t cublaslt = nullptr;
  cudnnHandle_t cudnn = nullptr;
};

// Handles are created per thread and device and intentionally never destroyed: destroying them from
// thread-exit or static destructors can run after the CUDA runtime has shut down.
thread_local std::unordered_map<int, Handles> tls_handles;

Handles& handles(int device) {
  Handles& h = tls_handles[device];
  return h;
}

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
  auto it = tls_streams.find(device);
  if (it != tls_streams.end()) return it->second;
  DeviceState& s = state(device);
  std::call_once(s.stream_once, [&] {
    DeviceGuard g(device);
    LN_CUDA_CHECK(cudaStreamCreateWithFlags(&s.default_stream, cudaStreamNonBlocking));
  });
  return s.default_stream;
}

void set_current_stream(int device, cudaStream_t stream) { tls_streams[device] = stream; }

StreamGuard::StreamGuard(int device, cudaStream_t stream) : device_(device), previous_(current_stream(device)) {
  set_current_stream(device, stream);
}

StreamGuard::~StreamGuard() { set_current_stream(device_, previous_); }

void synchronize(int device) {
  DeviceGuard g(device);
  LN_CUDA_CHECK(cudaStreamSynchronize(current_stream(device)));
}

cublasHandle_t cublas_handle(int device) {
  DeviceGuard g(device);
  Handles& h = handles(device);
  if (!h.cublas) LN_CUBLAS_CHECK(cublasCreate(&h.cublas));
  LN_CUBLAS_CHECK(cublasSetStream(h.cublas, current_stream(device)));
  return h.cublas;
}

cublasLtHandle_t cublaslt_handle(int device) {
  DeviceGuard g(device);
  Handles& h = handles(device);
  if (!h.cublaslt) LN_CUBLAS_CHECK(cublasLtCreate(&h.cublaslt));
  return h.cublaslt;
}

cudnnHandle_t cudnn_handle(int device) {
  DeviceGuard g(device);
  Handles& h = handles(device);
  if (!h.cudnn) LN_CUDNN_CHECK(cudnnCreate(&h.cudnn));
  LN_CUDNN_CHECK(cudnnSetStream(h.cudnn, current_stream(device)));
  return h.cudnn;
}

Allocator& device_allocator(int device) {
  DeviceState& s = state(device);
  std::call_once(s.alloc_once, [&] {
    s.allocator = new CachingAllocator(std::make_unique<CudaBackend>(device),
                                       [device] { return reinterpret_cast<StreamId>(current_stream(device)); });
  });
  return *s.allocator;
}

Allocator& pinned_allocator() {
  static CachingAllocator* a = new CachingAllocator(std::make_unique<PinnedBackend>(), nullptr);
  return *a;
}

const cudaDeviceProp& device_properties(int device) {
  DeviceState& s = state(device);
  std::call_once(s.prop_once, [&] { LN_CUDA_CHECK(cudaGetDeviceProperties(&s.prop, device)); });
  return s.prop;
}

}  // namespace livernet::cuda

namespace livernet::cuda {

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cuda() && src_device.is_cuda() && dst_device.index != src_device.index) {
    LN_CUDA_CHECK(cudaMemcpyPeer(dst, dst_device.index, src, src_device.index, nbytes));
    return;
  }
  const int dev = dst_device.is_cuda() ? dst_device.index : src_device.index;
  DeviceGuard g(dev);
  cudaStream_t s = current_stream(dev);
  LN_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, s));
  LN_CUDA_CHECK(cudaStreamSynchronize(s));
}

}  // namespace livernet::cuda
