#include "core/version.h"

#include <omp.h>

#include "core/device.h"
#include "core/error.h"

#include "core/device_backend.h"

#ifndef LIVERNET_VERSION_STRING
#define LIVERNET_VERSION_STRING "unknown"
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
  if (DeviceBackend* b = device_backend(DeviceType::CUDA)) {
    s += b->build_info();
  } else {
    s += "  CUDA backend: not built\n";
  }
  return s;
}

}  // namespace livernet
