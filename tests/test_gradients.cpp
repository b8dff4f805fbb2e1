// The gradient checks of every differentiable op in tests/op_cases.h: autograd against central finite
// differences on the CPU, and the CUDA gradients against the CPU ones when a GPU is present (f32 and bf16);
// and what a table row cannot say about gradients.
#include <gtest/gtest.h>

#include "layers/functional.h"
#include "op_harness.h"

using namespace livernet;
using namespace livernet::testing;

LN_OP_CASE_TESTS(gradient_rows(op_cases()), Gradient, MatchesFiniteDifferences, run_gradient_check(c), GradientGpu,
                 MatchesCpuInF32AndBf16, {
                   run_gradient_gpu_parity(c, DType::f32);
                   run_gradient_gpu_parity(c, DType::bf16);
                 });

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
