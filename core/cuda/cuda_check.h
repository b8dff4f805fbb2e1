// Error checking for the CUDA runtime, cuBLAS and cuDNN: file:line plus the library's own message.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "core/error.h"
#include "core/work_counters.h"

namespace livernet::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t st, const char* expr, const char* file, int line);
[[noreturn]] void throw_cudnn_error(cudnnStatus_t st, const char* expr, const char* file, int line);

}  // namespace livernet::cuda

#define LN_CUDA_CHECK(expr)                                                          \
  do {                                                                               \
    const cudaError_t ln_err_ = (expr);                                              \
    if (ln_err_ != cudaSuccess) ::livernet::cuda::throw_cuda_error(ln_err_, #expr, __FILE__, __LINE__); \
  } while (0)

#define LN_CUBLAS_CHECK(expr)                                                           \
  do {                                                                                  \
    const cublasStatus_t ln_st_ = (expr);                                               \
    if (ln_st_ != CUBLAS_STATUS_SUCCESS) ::livernet::cuda::throw_cublas_error(ln_st_, #expr, __FILE__, __LINE__); \
  } while (0)

#define LN_CUDNN_CHECK(expr)                                                           \
  do {                                                                                 \
    const cudnnStatus_t ln_st_ = (expr);                                               \
    if (ln_st_ != CUDNN_STATUS_SUCCESS) ::livernet::cuda::throw_cudnn_error(ln_st_, #expr, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: counts it (core/work_counters.h) and reports launch-configuration errors at the
// launch site.
#define LN_CUDA_CHECK_LAUNCH()      \
  do {                              \
    ::livernet::count_launches();   \
    LN_CUDA_CHECK(cudaGetLastError()); \
  } while (0)
