// tools/info: prints livernet's version, build configuration and devices, then runs a small self-check
// on every available device (random tensor -> element-wise ops -> reduction, compared with the CPU).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>

#include "core/version.h"
#include "dist/comm.h"
#include "dist/nccl.h"
#include "kernels/elementwise.h"
#include "kernels/tensor_ops.h"

using namespace livernet;

namespace {

double self_check(Device d) {
  const Tensor x = randn(Shape{4, 17, 17, 8}, /*seed=*/7, /*stream=*/0, 0.f, 1.f, DType::f32, d);
  const Tensor y = kernels::relu(kernels::add(x, kernels::scale(x, 0.5f)));
  return kernels::sum(y).item();
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::printf("usage: info\n  Prints the version, build configuration and devices, and runs a self-check.\n");
      return 0;
    }
    std::fprintf(stderr, "info: unknown argument '%s' (see --help)\n", argv[i]);
    return 2;
  }
  try {
    std::printf("%s", build_info().c_str());
    std::printf("  MPI: %s\n", dist::mpi_library().c_str());
    std::printf("  NCCL: %s\n", dist::nccl_library().c_str());
    const double cpu = self_check(Device::cpu());
    std::printf("self-check cpu: sum = %.6f\n", cpu);
    for (int i = 0; i < cuda_device_count(); ++i) {
      const double gpu = self_check(Device::cuda(i));
      const double rel = std::fabs(gpu - cpu) / std::max(1.0, std::fabs(cpu));
      std::printf("self-check cuda:%d: sum = %.6f (relative difference to cpu %.2e) %s\n", i, gpu, rel,
                  rel < 1e-5 ? "OK" : "MISMATCH");
      if (rel >= 1e-5) return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "info: %s\n", e.what());
    return 1;
  }
  return 0;
}
