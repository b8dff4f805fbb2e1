// The checks the rows of tests/op_cases.h get (after ggml's test-backend-ops):
//  - forward: the op on the CPU against its float64 reference in every dtype of the row (half types feed
//    the half-rounded inputs to the reference, with the row's looser tolerance); with a GPU, CUDA
//    against the CPU;
//  - gradients (after Caffe's test_gradient_check_util): with a fixed random seed r of the output's
//    shape, L(inputs) = sum(r * f(inputs)) (accumulated in float64 on the host). Autograd gives dL/dx_j
//    via f(...).backward(r); the numeric estimate is (L(x_j + eps) - L(x_j - eps)) / (2 eps); they must
//    agree within tol * max(|analytic|, |numeric|, 1), for up to max_checks elements of every input that
//    gets a gradient (in rows with kinks, those whose difference straddles one are skipped: at most a
//    quarter); with a GPU, the CUDA gradients against the CPU ones in f32 and bf16.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "core/tensor.h"
#include "kernels/tensor_ops.h"
#include "op_cases.h"
#include "test_util.h"

namespace livernet::testing {

inline std::string op_case_name(const ::testing::TestParamInfo<OpCase>& info) { return info.param.name; }
// GoogleTest prints a parameter with this instead of dumping its bytes.
inline void PrintTo(const OpCase& c, std::ostream* os) { *os << c.name; }

// The rows of a table that a check applies to.
inline std::vector<OpCase> forward_rows(const std::vector<OpCase>& all) {
  std::vector<OpCase> out;
  std::copy_if(all.begin(), all.end(), std::back_inserter(out), [](const OpCase& c) { return c.has_forward_check(); });
  return out;
}
inline std::vector<OpCase> gradient_rows(const std::vector<OpCase>& all) {
  std::vector<OpCase> out;
  std::copy_if(all.begin(), all.end(), std::back_inserter(out), [](const OpCase& c) { return c.has_gradient(); });
  return out;
}

// ---- forward ------------------------------------------------------------------------------------------

inline void expect_close(const std::vector<Tensor>& got, const std::vector<HostValues>& want, double tol,
                         const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what << ": number of outputs";
  for (std::size_t k = 0; k < got.size(); ++k) {
    const HostValues g = values(got[k]);
    ASSERT_EQ(g.size(), want[k].size()) << what << ": size of output " << k;
    const double err = max_rel_error(g, want[k]);
    EXPECT_LE(err, tol) << what << ": output " << k << " max relative error " << err << " (normalised MSE "
                        << normalized_mse(g, want[k]) << ")";
  }
}

inline void run_forward_case(const OpCase& c) {
  for (DType dt : c.dtypes) {
    const std::vector<Tensor> in = make_inputs(c, dt);
    std::vector<HostValues> host;
    for (const Tensor& t : in) host.push_back(values(t));  // before the op: some update inputs in place
    const std::vector<Tensor> out = c.run(in);
    expect_close(out, c.reference(host), dt == DType::f32 ? c.tol_f32 : c.tol_half,
                 c.name + " cpu " + dtype_name(dt) + " vs float64");
  }
}

inline void run_gpu_parity_case(const OpCase& c) {
  for (DType dt : c.dtypes) {
    const std::vector<Tensor> cpu = c.run(make_inputs(c, dt));
    const std::vector<Tensor> gpu = c.run(make_inputs(c, dt, Device::cuda()));
    std::vector<HostValues> want;
    for (const Tensor& t : cpu) want.push_back(values(t));
    for (const Tensor& t : gpu) EXPECT_TRUE(t.is_cuda()) << c.name << ": output left the GPU";
    expect_close(gpu, want, dt == DType::f32 ? std::max(c.tol_f32, 1e-5) : c.tol_half,
                 c.name + " cuda " + dtype_name(dt) + " vs cpu");
  }
}

// ---- gradients ----------------------------------------------------------------------------------------

// The case's inputs, those that get a gradient marked so.
inline std::vector<Tensor> make_grad_inputs(const OpCase& c, Device d, DType dtype = DType::f32) {
  std::vector<Tensor> in = make_inputs(c, dtype, d);
  for (std::size_t i = 0; i < in.size(); ++i)
    if (c.gets_grad(i)) in[i].requires_grad_();
  return in;
}

// Analytic gradients of sum(seed * f(inputs)) for every input that gets one (undefined otherwise).
inline std::vector<Tensor> analytic_grads(const OpCase& c, std::vector<Tensor>& in, Tensor* seed_out = nullptr) {
  for (Tensor& t : in)
    if (t.requires_grad()) t.set_grad(Tensor());
  Tensor y = c.differentiable(in);
  const Tensor seed = to_dtype(randn(y.shape(), 99, 0).to(y.device()), y.dtype());
  if (seed_out) *seed_out = seed;
  backward(y, seed);
  std::vector<Tensor> g;
  for (Tensor& t : in) g.push_back(t.requires_grad() ? t.grad() : Tensor());
  return g;
}

inline void run_gradient_check(const OpCase& c) {
  std::vector<Tensor> in = make_grad_inputs(c, Device::cpu());
  Tensor seed;
  const std::vector<Tensor> grads = analytic_grads(c, in, &seed);
  const std::vector<double> r = seed.to_vector<double>();
  auto loss = [&](const std::vector<Tensor>& inputs) {
    NoGradGuard ng;
    const std::vector<double> y = c.differentiable(inputs).to_vector<double>();
    double s = 0;
    for (std::size_t i = 0; i < y.size(); ++i) s += r[i] * y[i];
    return s;
  };
  int checked = 0, straddled = 0;
  for (std::size_t k = 0; k < in.size(); ++k) {
    if (!in[k].requires_grad()) continue;
    ASSERT_TRUE(grads[k].defined()) << c.name << ": no gradient reached input " << k;
    const std::vector<double> ana = grads[k].to_vector<double>();
    const std::int64_t n = in[k].numel();
    const std::int64_t checks = std::min<std::int64_t>(n, c.max_checks);
    for (std::int64_t t = 0; t < checks; ++t) {
      const std::int64_t j = checks == n ? t : t * n / checks + (t * 7919) % std::max<std::int64_t>(n / checks, 1);
      std::vector<float> base = in[k].to_vector<float>();
      auto with = [&](double delta) {
        std::vector<float> v = base;
        v[j] = static_cast<float>(v[j] + delta);
        std::vector<Tensor> mod = in;
        mod[k] = Tensor::from_vector(v, in[k].shape());
        return loss(mod);
      };
      const double up = with(c.grad_eps), down = with(-c.grad_eps);
      const double num = (up - down) / (2 * c.grad_eps);
      const double scale = std::max({std::fabs(ana[j]), std::fabs(num), 1.0});
      ++checked;
      if (c.kinks) {
        // Where L is smooth the one-sided differences agree to O(eps * L''); a kink inside [x - eps, x + eps]
        // makes them differ by the jump of the slope, and the central difference is then no reference.
        const double at = loss(in);
        if (std::fabs((up - at) - (at - down)) / c.grad_eps > c.grad_tol * scale) {
          ++straddled;
          continue;
        }
      }
      EXPECT_LE(std::fabs(ana[j] - num), c.grad_tol * scale)
          << c.name << ": input " << k << " element " << j << ": analytic " << ana[j] << " numeric " << num;
    }
  }
  EXPECT_LE(straddled * 4, checked) << c.name << ": " << straddled << " of " << checked
                                    << " checks straddle a kink: make eps or the inputs smaller";
}

// GPU analytic gradients against the CPU ones, inputs in `dtype` (those that stay f32 excepted).
inline void run_gradient_gpu_parity(const OpCase& c, DType dtype = DType::f32) {
  std::vector<Tensor> cin = make_grad_inputs(c, Device::cpu(), dtype);
  std::vector<Tensor> gin = make_grad_inputs(c, Device::cuda(), dtype);
  const std::vector<Tensor> cg = analytic_grads(c, cin);
  const std::vector<Tensor> gg = analytic_grads(c, gin);
  for (std::size_t k = 0; k < cg.size(); ++k) {
    if (!cg[k].defined()) continue;
    ASSERT_TRUE(gg[k].defined()) << c.name << ": no GPU gradient for input " << k;
    const double err = max_rel_error(values(gg[k]), values(cg[k]));
    EXPECT_LE(err, dtype == DType::f32 ? 1e-5 : 2e-2)
        << c.name << " (" << dtype_name(dtype) << "): input " << k << " GPU vs CPU gradient error " << err;
  }
}

}  // namespace livernet::testing

// Registers one check of `rows` on the CPU as Ops/<Cpu>.<cpu_test>/<row> and on CUDA as
// Ops/<Gpu>.<gpu_test>/<row> (skipped with the reason when there is no GPU); cpu_check and gpu_check
// take the row (`c`).
#define LN_OP_CASE_TESTS(rows, Cpu, cpu_test, cpu_check, Gpu, gpu_test, gpu_check)                          \
  class Cpu : public ::testing::TestWithParam<::livernet::testing::OpCase> {};                               \
  class Gpu : public ::testing::TestWithParam<::livernet::testing::OpCase> {};                               \
  TEST_P(Cpu, cpu_test) {                                                                                    \
    const ::livernet::testing::OpCase& c = GetParam();                                                      \
    cpu_check;                                                                                               \
  }                                                                                                          \
  TEST_P(Gpu, gpu_test) {                                                                                    \
    LN_REQUIRE_CUDA();                                                                                       \
    const ::livernet::testing::OpCase& c = GetParam();                                                      \
    gpu_check;                                                                                               \
  }                                                                                                          \
  INSTANTIATE_TEST_SUITE_P(Ops, Cpu, ::testing::ValuesIn(rows), ::livernet::testing::op_case_name);          \
  INSTANTIATE_TEST_SUITE_P(Ops, Gpu, ::testing::ValuesIn(rows), ::livernet::testing::op_case_name)
