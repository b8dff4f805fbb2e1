#include "kernels/cuda/handles.h"

#include <unordered_map>

#include "core/cuda/cuda_context.h"

namespace livernet::cuda {

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

namespace {

struct Handles {
  cublasHandle_t cublas = nullptr;
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

cublasHandle_t cublas_handle(int device) {
  DeviceGuard g(device);
  Handles& h = handles(device);
  if (!h.cublas) {
    LN_CUBLAS_CHECK(cublasCreate(&h.cublas));
    // An explicit workspace (the size cuBLAS recommends for Hopper), so that no call allocates one,
    // also while a CUDA graph is being captured. Lives as long as the handle (the process).
    constexpr std::size_t kWorkspace = std::size_t{32} << 20;
    void* ws = nullptr;
    LN_CUDA_CHECK(cudaMalloc(&ws, kWorkspace));
    LN_CUBLAS_CHECK(cublasSetWorkspace(h.cublas, ws, kWorkspace));
  }
  LN_CUBLAS_CHECK(cublasSetStream(h.cublas, current_stream(device)));
  return h.cublas;
}

cudnnHandle_t cudnn_handle(int device) {
  DeviceGuard g(device);
  Handles& h = handles(device);
  if (!h.cudnn) LN_CUDNN_CHECK(cudnnCreate(&h.cudnn));
  LN_CUDNN_CHECK(cudnnSetStream(h.cudnn, current_stream(device)));
  return h.cudnn;
}

}  // namespace livernet::cuda
