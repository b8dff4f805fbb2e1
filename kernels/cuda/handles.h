// The cuBLAS and cuDNN handles the CUDA kernels use, per thread and device, bound to the device's stream
// (core/cuda/cuda_context.h), and the checks that turn their errors into one-line livernet::Errors.
// Only compiled in CUDA builds.
#pragma once

#include <cublas_v2.h>
#include <cudnn.h>

#include "core/cuda/cuda_check.h"

namespace livernet::cuda {

cublasHandle_t cublas_handle(int device);
cudnnHandle_t cudnn_handle(int device);

[[noreturn]] void throw_cublas_error(cublasStatus_t st, const char* expr, const char* file, int line);
[[noreturn]] void throw_cudnn_error(cudnnStatus_t st, const char* expr, const char* file, int line);

}  // namespace livernet::cuda

#define LN_CUBLAS_CHECK(expr) \
  LN_STATUS_CHECK(cublasStatus_t, CUBLAS_STATUS_SUCCESS, ::livernet::cuda::throw_cublas_error, expr)
#define LN_CUDNN_CHECK(expr) \
  LN_STATUS_CHECK(cudnnStatus_t, CUDNN_STATUS_SUCCESS, ::livernet::cuda::throw_cudnn_error, expr)
