#include "core/version.h"

#include <omp.h>

#include "core/device.h"
#include "core/error.h"

#if defined(LIVERNET_WITH_CUDA)
#include <cudnn_version.h>

#include "core/cuda/cuda_context.h"
#endif

#ifndef LIVERNET_VERSION_STRING
#define LIVERNET_VERSION_STRING "unknown"
#endif
#ifndef LIVERNET_CUDA_ARCHS
#define LIVERNET_CUDA_ARCHS ""
#endif

namespace livernet {

const char* version() { return LIVERNET_VERSION_STRING; }

std::string build_info() {
  std::string s = str_cat("livernet ", version(), "\n");
#if defined(__clang__)
  s += str_cat("  compiler: clang ", __clang_major__, ".", __clang_minor__, "\n");
#elif defined(__GNUC__)
  s += str_cat("  compiler: gcc ", __GNUC__, ".", __GNUC_MINOR__, "\n");
#endif
  s += str_cat("  CPU threads (OpenMP): ", omp_get_max_threads(), "\n");
#if defined(LIVERNET_WITH_CUDA)
  int rt = 0;
  cudaRuntimeGetVersion(&rt);
  s += str_cat("  CUDA backend: built (runtime ", rt / 1000, ".", (rt % 1000) / 10, ", architectures ",
               LIVERNET_CUDA_ARCHS, ", cuDNN ", CUDNN_MAJOR, ".", CUDNN_MINOR, ".", CUDNN_PATCHLEVEL, ")\n");
  const int n = cuda_device_count();
  if (n == 0) s += str_cat("  CUDA devices: none (", cuda_unavailable_reason(), ")\n");
  for (int i = 0; i < n; ++i) {
    const cudaDeviceProp& p = cuda::device_properties(i);
    s += str_cat("  cuda:", i, ": ", p.name, ", sm_", p.major, p.minor, ", ", p.totalGlobalMem / (1024 * 1024),
                 " MiB, ", p.multiProcessorCount, " SMs\n");
  }
#else
  s += "  CUDA backend: not built\n";
#endif
  return s;
}

}  // namespace livernet
