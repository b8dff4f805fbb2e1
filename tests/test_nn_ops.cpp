// The forward checks of every op in tests/op_cases.h (CPU against float64 references in f32, bf16 and f16;
// CUDA against the CPU when a GPU is present), and what a table row cannot say about the NN ops.
#include <gtest/gtest.h>

#include <cmath>

#include "core/philox.h"
#include "kernels/nn.h"
#include "kernels/elementwise.h"
#include "kernels/tensor_ops.h"
#include "op_harness.h"
#include "reference_ops.h"

using namespace livernet;
using namespace livernet::testing;
using kernels::Pool2dParams;

LN_OP_CASE_TESTS(forward_rows(op_cases()), Forward, MatchesFloat64Reference, run_forward_case(c), ForwardGpu, MatchesCpu,
                 run_gpu_parity_case(c));

TEST(NnOps, MaxPoolTiesPickTheFirstMaximumAndNaNWins) {
  // One 3x3 window of equal values: the index is the first tap.
  Tensor idx;
  const Tensor x = ones(Shape{1, 3, 3, 1});
  kernels::max_pool2d_forward(x, Pool2dParams::make(3, 1, 0), idx);
  EXPECT_EQ(idx.to_vector<int>()[0], 0);
  std::vector<float> v(9, 1.f);
  v[4] = NAN;
  const Tensor y = kernels::max_pool2d_forward(Tensor::from_vector(v, Shape{1, 3, 3, 1}), Pool2dParams::make(3, 1, 0), idx);
  EXPECT_TRUE(std::isnan(y.item()));
  EXPECT_EQ(idx.to_vector<int>()[0], 4);
}

// Inference skips the indices: the same maxima, NaNs included, over many channels (the vectorised loop)
// and padded windows.
TEST(NnOps, MaxPoolWithoutIndicesGivesTheSameMaxima) {
  Tensor x = Tensor::empty(Shape{2, 9, 11, 37});
  kernels::random_fill(x, kernels::RandomDist::normal, 7, 0, 0.f, 1.f);
  float* p = x.data<float>();
  p[5] = NAN;
  p[37 * 20 + 3] = NAN;
  p[37 * 21 + 3] = INFINITY;
  for (const Pool2dParams& params : {Pool2dParams::make(3, 2, 0), Pool2dParams::make(3, 1, 1)}) {
    Tensor idx, none;
    const Tensor with = kernels::max_pool2d_forward(x, params, idx, true);
    const Tensor without = kernels::max_pool2d_forward(x, params, none, false);
    EXPECT_TRUE(idx.defined());
    EXPECT_FALSE(none.defined());
    const std::vector<float> a = with.to_vector<float>(), b = without.to_vector<float>();
    const std::vector<int> ix = idx.to_vector<int>();
    ASSERT_EQ(a.size(), b.size());
    int nans = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      ASSERT_TRUE(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]))) << i;
      // The index points at the value returned.
      const std::size_t c = i % 37, n = i / (37 * with.size(1) * with.size(2));
      const float at = p[(n * 9 * 11 + static_cast<std::size_t>(ix[i])) * 37 + c];
      ASSERT_TRUE(at == a[i] || (std::isnan(at) && std::isnan(a[i]))) << i;
      nans += std::isnan(a[i]);
    }
    EXPECT_GT(nans, 0);
  }
}

TEST(NnOps, CrossEntropyRejectsBadLabelsWithAClearMessage) {
  kernels::CrossEntropyState st;
  const Tensor logits = zeros(Shape{2, 3});
  try {
    kernels::softmax_cross_entropy_forward(logits, Tensor::from_vector<std::int64_t>({0, 3}, Shape{2}), Tensor(), 0.f, st);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label 3 of sample 1 is outside [0, 3)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(kernels::softmax_cross_entropy_forward(logits, zeros(Shape{2}), Tensor(), 0.f, st), Error);
}

TEST(NnOps, ShapeErrorsNameBothSides) {
  try {
    kernels::conv2d_forward(zeros(Shape{1, 5, 5, 3}), zeros(Shape{4, 3, 3, 2}), Tensor(), {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 channels"), std::string::npos) << e.what();
  }
  EXPECT_THROW(kernels::linear_forward(zeros(Shape{2, 4}), zeros(Shape{3, 5}), Tensor()), Error);
  Tensor idx;
  EXPECT_THROW(kernels::max_pool2d_forward(zeros(Shape{1, 2, 2, 1}), Pool2dParams::make(3, 2, 0), idx), Error);
}

TEST(NnOps, DropoutMaskDependsOnlyOnSeedStreamAndIndex) {
  const Tensor x = ones(Shape{10000});
  const auto a = kernels::dropout_forward(x, 0.4f, 3, 9).to_vector<float>();
  const auto b = kernels::dropout_forward(x, 0.4f, 3, 9).to_vector<float>();
  const auto c = kernels::dropout_forward(x, 0.4f, 3, 10).to_vector<float>();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  int kept = 0;
  for (float v : a) kept += v != 0.f;
  EXPECT_NEAR(kept / 10000.0, 0.6, 0.02);
  // Backward applies the same mask.
  EXPECT_EQ(kernels::dropout_backward(x, 0.4f, 3, 9).to_vector<float>(), a);
}
