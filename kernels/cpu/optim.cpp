// CPU optimizer kernels: one fused pass per parameter tensor.
#include <cmath>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/parallel.h"
#include "kernels/type_switch.h"

namespace livernet::kernels::cpu {

void sgd_update(Tensor& param, const Tensor& grad, Tensor& buf, const SgdHyper& h) {
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* b = h.momentum != 0.f ? buf.data<float>() : nullptr;
  parallel_for(param.numel(), [&](std::int64_t lo, std::int64_t hi) {
    float dummy = 0.f;
    for (std::int64_t i = lo; i < hi; ++i) sgd_step(p[i], g[i], b ? b[i] : dummy, h);
  });
}

void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamHyper& h) {
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* mp = m.data<float>();
  float* vp = v.data<float>();
  parallel_for(param.numel(), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) adam_step(p[i], g[i], mp[i], vp[i], h);
  });
}

namespace {
template <typename T>
void grad_stats_impl(const T* p, std::int64_t n, double& sq, bool& bad) {
  const int threads = (n <= kParallelGrain || omp_in_parallel()) ? 1 : omp_get_max_threads();
  std::vector<double> part(static_cast<std::size_t>(threads), 0.0);
  std::vector<char> nonfinite(static_cast<std::size_t>(threads), 0);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    double s = 0;
    char nf = 0;
    for (std::int64_t i = n * t / nt; i < n * (t + 1) / nt; ++i) {
      const float v = to_float(p[i]);
      if (!std::isfinite(v)) nf = 1;
      s += static_cast<double>(v) * v;
    }
    part[t] = s;
    nonfinite[t] = nf;
  }
  for (int t = 0; t < threads; ++t) {
    sq += part[t];
    bad = bad || nonfinite[t];
  }
}
}  // namespace

void grad_stats(const Tensor& x, Tensor& out) {
  double sq = 0;
  bool bad = false;
  LN_SWITCH_FLOAT(x.dtype(), "grad_stats", T, { grad_stats_impl(x.data<T>(), x.numel(), sq, bad); });
  float* o = out.data<float>();
  o[0] = static_cast<float>(sq);
  o[1] = bad ? 1.f : 0.f;
}

}  // namespace livernet::kernels::cpu
