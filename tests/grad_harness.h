// Gradient checks (after Caffe's test_gradient_check_util): the analytic gradients from autograd
// against central finite differences, on tiny shapes, for every input that requires grad.
//
// With a fixed random seed r of the output's shape, L(inputs) = sum(r * f(inputs)) (accumulated in
// float64 on the host). Autograd gives dL/dx_j via f(...).backward(r). The numeric estimate is
// (L(x_j + eps) - L(x_j - eps)) / (2 eps). They must agree within tol * max(|analytic|, |numeric|, 1).
// Up to `max_checks` elements per input are checked (spread evenly). Inputs can be pushed away from
// kinks (ReLU zeros, max-pool ties) with input_transform.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "core/tensor.h"
#include "kernels/tensor_ops.h"
#include "test_util.h"

namespace livernet::testing {

struct GradCase {
  std::string name;
  std::vector<Shape> input_shapes;
  std::vector<bool> differentiable;  // per input (default: all)
  // Per input: a parameter that stays f32 under mixed precision (BN gamma/beta, a residual scale), as
  // the ops require; the others are cast to the activation dtype (default: none stays f32).
  std::vector<bool> stays_f32;
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  std::function<double(double)> input_transform;  // applied to every random input value
  double eps = 1e-2;
  double tol = 1e-2;
  int max_checks = 24;
};

inline void PrintTo(const GradCase& c, std::ostream* os) { *os << c.name; }
inline std::string grad_case_name(const ::testing::TestParamInfo<GradCase>& info) { return info.param.name; }

inline std::vector<Tensor> make_grad_inputs(const GradCase& c, Device d) {
  std::vector<Tensor> in;
  for (std::size_t i = 0; i < c.input_shapes.size(); ++i) {
    Tensor t = randn(c.input_shapes[i], 500 + i, 1);
    if (c.input_transform) {
      std::vector<float> v = t.to_vector<float>();
      for (float& x : v) x = static_cast<float>(c.input_transform(x));
      t = Tensor::from_vector(v, c.input_shapes[i]);
    }
    t = t.to(d);
    const bool diff = c.differentiable.empty() || c.differentiable[i];
    if (diff) t.requires_grad_();
    in.push_back(t);
  }
  return in;
}

// Analytic gradients of sum(seed * f(inputs)) for every differentiable input (undefined otherwise).
inline std::vector<Tensor> analytic_grads(const GradCase& c, std::vector<Tensor>& in, Tensor* seed_out = nullptr) {
  for (Tensor& t : in)
    if (t.requires_grad()) t.set_grad(Tensor());
  Tensor y = c.fn(in);
  const Tensor seed = to_dtype(randn(y.shape(), 99, 0).to(y.device()), y.dtype());
  if (seed_out) *seed_out = seed;
  backward(y, seed);
  std::vector<Tensor> g;
  for (Tensor& t : in) g.push_back(t.requires_grad() ? t.grad() : Tensor());
  return g;
}

inline void run_gradient_check(const GradCase& c) {
  std::vector<Tensor> in = make_grad_inputs(c, Device::cpu());
  Tensor seed;
  const std::vector<Tensor> grads = analytic_grads(c, in, &seed);
  const std::vector<double> r = seed.to_vector<double>();
  auto loss = [&](const std::vector<Tensor>& inputs) {
    NoGradGuard ng;
    const std::vector<double> y = c.fn(inputs).to_vector<double>();
    double s = 0;
    for (std::size_t i = 0; i < y.size(); ++i) s += r[i] * y[i];
    return s;
  };
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
      const double num = (with(c.eps) - with(-c.eps)) / (2 * c.eps);
      const double scale = std::max({std::fabs(ana[j]), std::fabs(num), 1.0});
      EXPECT_LE(std::fabs(ana[j] - num), c.tol * scale)
          << c.name << ": input " << k << " element " << j << ": analytic " << ana[j] << " numeric " << num;
    }
  }
}

// GPU analytic gradients against the CPU ones.
inline void run_gradient_gpu_parity(const GradCase& c, DType dtype = DType::f32) {
  std::vector<Tensor> cin = make_grad_inputs(c, Device::cpu());
  std::vector<Tensor> gin = make_grad_inputs(c, Device::cuda());
  if (dtype != DType::f32) {
    for (auto* v : {&cin, &gin})
      for (std::size_t i = 0; i < v->size(); ++i) {
        if (i < c.stays_f32.size() && c.stays_f32[i]) continue;
        Tensor& t = (*v)[i];
        const bool rg = t.requires_grad();
        t = to_dtype(t, dtype);
        if (rg) t.requires_grad_();
      }
  }
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
