// CPU optimizer kernels: one fused pass per parameter tensor; the multi-tensor forms loop over the list
// with the same per-tensor passes.
#include <cmath>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/parallel.h"
#include "kernels/type_switch.h"

namespace livernet::kernels::cpu {

namespace {
// mul: the multi-tensor kernels' grad_mul, nullptr when absent (the gradient is then used as it is,
// so the per-parameter and multi-tensor paths run the same instructions).
void sgd_pass(const Tensor& param, const Tensor& grad, const Tensor& buf, const SgdHyper& h, const SgdParamHyper& ph,
              const float* mul) {
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* b = h.momentum != 0.f ? buf.data<float>() : nullptr;
  parallel_for(param.numel(), [&](std::int64_t lo, std::int64_t hi) {
    float dummy = 0.f;
    if (mul) {
      const float s = *mul;
      for (std::int64_t i = lo; i < hi; ++i) sgd_step(p[i], mul_rn(g[i], s), b ? b[i] : dummy, h, ph);
    } else {
      for (std::int64_t i = lo; i < hi; ++i) sgd_step(p[i], g[i], b ? b[i] : dummy, h, ph);
    }
  });
}

void adam_pass(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, const AdamHyper& h,
               float weight_decay, const float* mul) {
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* mp = m.data<float>();
  float* vp = v.data<float>();
  parallel_for(param.numel(), [&](std::int64_t lo, std::int64_t hi) {
    if (mul) {
      const float s = *mul;
      for (std::int64_t i = lo; i < hi; ++i) adam_step(p[i], mul_rn(g[i], s), mp[i], vp[i], h, weight_decay);
    } else {
      for (std::int64_t i = lo; i < hi; ++i) adam_step(p[i], g[i], mp[i], vp[i], h, weight_decay);
    }
  });
}

bool step_skipped(const Tensor& found_inf) { return found_inf.defined() && found_inf.data<float>()[0] != 0.f; }
const float* grad_mul_ptr(const Tensor& grad_mul) { return grad_mul.defined() ? grad_mul.data<float>() : nullptr; }

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

void accumulate_stats(const Tensor& x, double& sq, bool& bad) {
  LN_SWITCH_FLOAT(x.dtype(), "grad_stats", T, { grad_stats_impl(x.data<T>(), x.numel(), sq, bad); });
}

void write_stats(double sq, bool bad, Tensor& out) {
  float* o = out.data<float>();
  o[0] = static_cast<float>(sq);
  o[1] = bad ? 1.f : 0.f;
}
}  // namespace

void sgd_update(Tensor& param, const Tensor& grad, Tensor& buf, const SgdHyper& h, const SgdParamHyper& ph) {
  sgd_pass(param, grad, buf, h, ph, nullptr);
}

void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamHyper& h, float weight_decay) {
  adam_pass(param, grad, m, v, h, weight_decay, nullptr);
}

void sgd_update_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_bufs, const std::vector<SgdParamHyper>& per_param,
                      const SgdHyper& h, const Tensor& found_inf, const Tensor& grad_mul) {
  if (step_skipped(found_inf)) return;
  const float* mul = grad_mul_ptr(grad_mul);
  for (std::size_t i = 0; i < params.size(); ++i)
    if (params[i].numel() > 0) sgd_pass(params[i], grads[i], momentum_bufs[i], h, per_param[i], mul);
}

void adam_update_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& m,
                       const std::vector<Tensor>& v, const std::vector<float>& weight_decays, const AdamHyper& h,
                       const Tensor& found_inf, const Tensor& grad_mul) {
  if (step_skipped(found_inf)) return;
  const float* mul = grad_mul_ptr(grad_mul);
  for (std::size_t i = 0; i < params.size(); ++i)
    if (params[i].numel() > 0) adam_pass(params[i], grads[i], m[i], v[i], h, weight_decays[i], mul);
}

void grad_stats(const Tensor& x, Tensor& out) {
  double sq = 0;
  bool bad = false;
  accumulate_stats(x, sq, bad);
  write_stats(sq, bad, out);
}

void grad_stats_multi(const std::vector<Tensor>& xs, Tensor& out) {
  double sq = 0;
  bool bad = false;
  for (const Tensor& x : xs)
    if (x.numel() > 0) accumulate_stats(x, sq, bad);
  write_stats(sq, bad, out);
}

}  // namespace livernet::kernels::cpu
