// The gradient checks of every differentiable op in tests/op_cases.h: autograd against central finite
// differences on the CPU, and the CUDA gradients against the CPU ones when a GPU is present (f32 and bf16);
// and what a table row cannot say about gradients.
#include <gtest/gtest.h>

#include "layers/functional.h"
#include "op_harness.h"

using namespace livernet;
using namespace livernet::testing;

namespace {

class Gradient : public ::testing::TestWithParam<OpCase> {};
class GradientGpu : public ::testing::TestWithParam<OpCase> {};

TEST_P(Gradient, MatchesFiniteDifferences) { run_gradient_check(GetParam()); }
TEST_P(GradientGpu, MatchesCpuInF32AndBf16) {
  LN_REQUIRE_CUDA();
  run_gradient_gpu_parity(GetParam(), DType::f32);
  run_gradient_gpu_parity(GetParam(), DType::bf16);
}
INSTANTIATE_TEST_SUITE_P(Ops, Gradient, ::testing::ValuesIn(gradient_rows(op_cases())), op_case_name);
INSTANTIATE_TEST_SUITE_P(Ops, GradientGpu, ::testing::ValuesIn(gradient_rows(op_cases())), op_case_name);

}  // namespace

TEST(Gradient, CastSendsTheGradientBackInTheInputDtype) {
  Tensor x = randn(Shape{3, 4}, 1).requires_grad_();
  Tensor y = F::cast(x, DType::bf16);
  EXPECT_EQ(y.dtype(), DType::bf16);
  backward(F::sum(F::scale(y, 2.f)));
  EXPECT_EQ(x.grad().dtype(), DType::f32);
  for (float g : x.grad().to_vector<float>()) EXPECT_EQ(g, 2.f);
}

TEST(Gradient, SoftmaxIsNotDifferentiable) {
  Tensor x = randn(Shape{2, 3}, 1).requires_grad_();
  try {
    backward(F::sum(F::softmax(x)));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'softmax'"), std::string::npos) << e.what();
  }
}
