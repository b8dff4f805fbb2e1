// Element-wise ops and reductions: what a row of tests/op_cases.h cannot say (shapes of keepdim, aliasing,
// NaN propagation). The rows themselves run in test_nn_ops.cpp.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/elementwise.h"
#include "kernels/tensor_ops.h"
#include "test_util.h"

using namespace livernet;
using kernels::BinaryOp;

TEST(Reduction, KeepdimAndShapes) {
  const Tensor x = randn(Shape{2, 3, 4, 5}, 3);
  EXPECT_EQ(kernels::sum(x, {1, 2}).shape(), (Shape{2, 5}));
  EXPECT_EQ(kernels::sum(x, {1, 2}, true).shape(), (Shape{2, 1, 1, 5}));
  EXPECT_EQ(kernels::sum(x).shape(), Shape{});
  EXPECT_EQ(kernels::sum(to_dtype(x, DType::bf16)).dtype(), DType::f32) << "reductions return f32";
  EXPECT_THROW(kernels::sum(x, {4}), Error);
  EXPECT_THROW(kernels::sum(x, {1, 1}), Error);
  EXPECT_DOUBLE_EQ(kernels::sum(zeros(Shape{0, 3})).item(), 0.0);
  EXPECT_THROW(kernels::max(zeros(Shape{0})), Error);
}

TEST(Elementwise, OutputMayAliasAnInput) {
  Tensor a = arange(0, 10);
  const Tensor b = ones(Shape{10});
  kernels::binary(BinaryOp::add, a, b, a);
  EXPECT_EQ(a.to_vector<float>()[9], 10.f);
}

TEST(Elementwise, NaNPropagatesThroughMaximum) {
  const Tensor a = Tensor::from_vector<float>({NAN, 1.f}, Shape{2});
  const Tensor b = Tensor::from_vector<float>({1.f, NAN}, Shape{2});
  const auto m = kernels::binary(BinaryOp::maximum, a, b).to_vector<float>();
  EXPECT_TRUE(std::isnan(m[0]));
  EXPECT_TRUE(std::isnan(m[1]));
  EXPECT_TRUE(std::isnan(kernels::max(a).item()));
}
