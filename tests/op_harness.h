// Table-driven op harness (after ggml's test-backend-ops): each OpCase is one row. The harness
//  - runs the op on the CPU and compares with a float64 reference written naively in the test;
//  - when a GPU is present, runs it on CUDA and compares with the CPU result;
//  - for half types (bf16/f16), feeds the half-rounded inputs to the reference and loosens the tolerance.
// A new op is one more row in a table.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/tensor_ops.h"
#include "test_util.h"

namespace livernet::testing {

using HostValues = std::vector<double>;

struct OpCase {
  std::string name;                 // unique; becomes the test name
  std::vector<Shape> input_shapes;  // inputs are random normal (Philox, seeded by position)
  // The op under test on tensors of any device and dtype; returns its outputs.
  std::function<std::vector<Tensor>(const std::vector<Tensor>&)> run;
  // float64 reference on the host: inputs -> outputs (flattened, row-major).
  std::function<std::vector<HostValues>(const std::vector<HostValues>&)> reference;
  // Optional: maps each random input value (e.g. abs() for log/sqrt).
  std::function<double(double)> input_transform;
  std::vector<DType> dtypes = {DType::f32, DType::bf16, DType::f16};
  double tol_f32 = 1e-6;    // CPU vs float64, and GPU vs CPU uses max(this, 1e-5)
  double tol_half = 1e-2;
};

inline std::string op_case_name(const ::testing::TestParamInfo<OpCase>& info) { return info.param.name; }

// Inputs for a case in `dtype` on the CPU.
inline std::vector<Tensor> make_inputs(const OpCase& c, DType dtype) {
  std::vector<Tensor> in;
  for (std::size_t i = 0; i < c.input_shapes.size(); ++i) {
    Tensor t = randn(c.input_shapes[i], /*seed=*/1000 + i, /*stream=*/0);
    if (c.input_transform) {
      std::vector<float> v = t.to_vector<float>();
      for (float& x : v) x = static_cast<float>(c.input_transform(x));
      t = Tensor::from_vector(v, c.input_shapes[i]);
    }
    in.push_back(to_dtype(t, dtype));
  }
  return in;
}

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

class OpForward : public ::testing::TestWithParam<OpCase> {};
class OpGpuParity : public ::testing::TestWithParam<OpCase> {};

inline void run_forward_case(const OpCase& c) {
  for (DType dt : c.dtypes) {
    const std::vector<Tensor> in = make_inputs(c, dt);
    std::vector<HostValues> host;
    for (const Tensor& t : in) host.push_back(values(t));
    const std::vector<Tensor> out = c.run(in);
    expect_close(out, c.reference(host), dt == DType::f32 ? c.tol_f32 : c.tol_half,
                 c.name + " cpu " + dtype_name(dt) + " vs float64");
  }
}

inline void run_gpu_parity_case(const OpCase& c) {
  for (DType dt : c.dtypes) {
    const std::vector<Tensor> in = make_inputs(c, dt);
    std::vector<Tensor> gin;
    for (const Tensor& t : in) gin.push_back(t.to(Device::cuda()));
    const std::vector<Tensor> cpu = c.run(in);
    const std::vector<Tensor> gpu = c.run(gin);
    std::vector<HostValues> want;
    for (const Tensor& t : cpu) want.push_back(values(t));
    for (const Tensor& t : gpu) EXPECT_TRUE(t.is_cuda()) << c.name << ": output left the GPU";
    expect_close(gpu, want, dt == DType::f32 ? std::max(c.tol_f32, 1e-5) : c.tol_half,
                 c.name + " cuda " + dtype_name(dt) + " vs cpu");
  }
}

}  // namespace livernet::testing

// Registers a table of OpCase rows under `suite` for both checks (test suites suite##Forward, suite##Gpu).
#define LN_OP_TABLE(suite, cases_fn)                                                                        \
  class suite##Forward : public ::livernet::testing::OpForward {};                                         \
  class suite##Gpu : public ::livernet::testing::OpGpuParity {};                                           \
  TEST_P(suite##Forward, MatchesFloat64Reference) { ::livernet::testing::run_forward_case(GetParam()); }  \
  TEST_P(suite##Gpu, MatchesCpu) {                                                                         \
    LN_REQUIRE_CUDA();                                                                                     \
    ::livernet::testing::run_gpu_parity_case(GetParam());                                                  \
  }                                                                                                        \
  INSTANTIATE_TEST_SUITE_P(Ops, suite##Forward, ::testing::ValuesIn(cases_fn()), ::livernet::testing::op_case_name); \
  INSTANTIATE_TEST_SUITE_P(Ops, suite##Gpu, ::testing::ValuesIn(cases_fn()), ::livernet::testing::op_case_name)

namespace livernet::testing {
// GoogleTest prints a parameter with this instead of dumping its bytes.
inline void PrintTo(const OpCase& c, std::ostream* os) { *os << c.name; }
}  // namespace livernet::testing
