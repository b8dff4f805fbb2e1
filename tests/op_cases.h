// One table of op cases (after ggml's test-backend-ops) drives every per-op check and benchmark:
//  - the forward checks (tests/test_ops.cpp): the raw op on the CPU against a float64 reference written
//    in the table, in f32, bf16 and f16, and on CUDA against the CPU;
//  - the gradient checks (same file): the differentiable op's analytic gradients against central finite
//    differences on the CPU, and the CUDA gradients against the CPU ones in f32 and bf16;
//  - the layer benchmarks (bench/bench_layers.cpp): the same rows, made by the same functions at
//    InceptionV3's shapes, timed forward and backward on each device.
// A new op is one more row: a family function below (or a new one) sets what the row can do, and every
// program above picks it up (docs/architecture.md, "Where to add an op").
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/nn.h"

namespace livernet::testing {

using HostValues = std::vector<double>;

struct OpCase {
  std::string name;                 // unique in its table; becomes the test's or benchmark's name
  std::vector<Shape> input_shapes;  // inputs are random normal (Philox, seeded by position) ...
  // ... then mapped value by value (input index given): away from kinks, ties or a domain's edge.
  std::function<double(double x, std::size_t input)> input_transform;
  // Inputs that stay f32 when the others are cast to a half type (BN's parameters and running
  // statistics, a residual scale), as the ops require.
  std::vector<bool> stays_f32;

  // ---- forward: the raw op (kernels/) and its float64 reference on the host --------------------------
  std::function<std::vector<Tensor>(const std::vector<Tensor>&)> run;
  std::function<std::vector<HostValues>(const std::vector<HostValues>&)> reference;  // empty: no forward check
  std::vector<DType> dtypes = {DType::f32, DType::bf16, DType::f16};
  double tol_f32 = 1e-6;  // CPU vs float64; CUDA vs CPU uses max(this, 1e-5)
  double tol_half = 1e-2;

  // ---- gradients: the differentiable op (layers/functional.h); empty when it has none -----------------
  std::function<Tensor(const std::vector<Tensor>&)> differentiable;
  std::vector<bool> grad_inputs;  // which inputs get a gradient (default: all)
  std::vector<int> params;        // of those, the op's parameters (weights, gamma/beta): benchmarked apart
  double grad_eps = 1e-2;
  double grad_tol = 1e-2;
  int max_checks = 24;  // elements checked per input, spread evenly
  // The op has kinks that no input transform can keep away (a ReLU after batch statistics): a check whose
  // finite difference straddles one (its one-sided differences disagree) is skipped, at most a quarter.
  bool kinks = false;

  // ---- benchmark: work of one forward, for a rate (0: not reported) -----------------------------------
  double flops = 0;
  double bytes_forward = 0, bytes_backward = 0;
  std::string label;  // a human description of the shape (bench output)

  bool has_forward_check() const { return static_cast<bool>(reference); }
  bool has_gradient() const { return static_cast<bool>(differentiable); }
  bool gets_grad(std::size_t input) const { return grad_inputs.empty() || grad_inputs[input]; }
  bool is_param(std::size_t input) const;
  bool keeps_f32(std::size_t input) const { return input < stays_f32.size() && stays_f32[input]; }
};

// The case's inputs on `device`: random normal (seed 1000 + position), transformed, then cast to `dtype`
// except those that stay f32.
std::vector<Tensor> make_inputs(const OpCase& c, DType dtype, Device device = Device::cpu());

// ---- the families: one function per kind of op, used by both tables ------------------------------------
OpCase conv_case(const std::string& name, Shape xs, Shape ws, kernels::Conv2dParams p, bool bias);
// Inputs x, gamma, beta, running mean, running var (made positive).
OpCase batch_norm_case(const std::string& name, Shape xs, bool train, bool gamma, bool relu);
OpCase pool_case(const std::string& name, Shape xs, kernels::Pool2dParams p, bool is_max);
OpCase global_avg_pool_case(const std::string& name, Shape xs);
// Concatenation along the last axis of parts that differ only there (and the split back).
OpCase concat_case(const std::string& name, std::vector<Shape> parts);

// Every case at small, odd shapes: what the tests run.
std::vector<OpCase> op_cases();
// InceptionV3's layers at 299x299 with `batch` images: every distinct convolution, BN+ReLU, the pools and a
// Mixed block's concatenation; what bench_layers times.
std::vector<OpCase> inception_layer_cases(std::int64_t batch);

}  // namespace livernet::testing
