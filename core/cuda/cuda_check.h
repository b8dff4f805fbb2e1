// Error checking for the CUDA runtime: file:line plus the runtime's own message (cuBLAS and cuDNN:
// kernels/cuda/handles.h).
#pragma once

#include <cuda_runtime.h>

#include "core/error.h"
#include "core/work_counters.h"

namespace livernet::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line);

}  // namespace livernet::cuda

// Evaluates `expr` (a status of type `type`) once; anything but `ok` goes to `thrower(status, "expr",
// file, line)`, which throws a livernet::Error. The library checks below are this with their own types.
#define LN_STATUS_CHECK(type, ok, thrower, expr)                                  \
  do {                                                                            \
    const type ln_status_ = (expr);                                               \
    if (ln_status_ != (ok)) thrower(ln_status_, #expr, __FILE__, __LINE__);       \
  } while (0)

#define LN_CUDA_CHECK(expr) LN_STATUS_CHECK(cudaError_t, cudaSuccess, ::livernet::cuda::throw_cuda_error, expr)

// After a kernel launch: counts it (core/work_counters.h) and reports launch-configuration errors at the
// launch site.
#define LN_CUDA_CHECK_LAUNCH()      \
  do {                              \
    ::livernet::count_launches();   \
    LN_CUDA_CHECK(cudaGetLastError()); \
  } while (0)
