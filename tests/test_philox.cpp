// Philox4x32-10: Random123 known-answer vectors, the distributions built on it, and CPU == GPU.
#include <gtest/gtest.h>

#include <cmath>

#include "core/philox.h"
#include "core/tensor.h"
#include "kernels/tensor_ops.h"
#include "test_util.h"

using namespace livernet;

TEST(Philox, KnownAnswerVectors) {
  struct Kat {
    Philox4x32 ctr;
    std::uint32_t k0, k1;
    Philox4x32 expected;
  };
  // From the kat_vectors file of the Random123 distribution (philox4x32, 10 rounds).
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const Kat& k : kats) {
    const Philox4x32 r = philox4x32_10(k.ctr, k.k0, k.k1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(r.v[i], k.expected.v[i]) << "word " << i;
  }
}

TEST(Philox, UniformIsInRangeAndUnbiased) {
  const Tensor u = rand(Shape{200000}, 42, 3, -2.f, 5.f);
  const std::vector<float> v = u.to_vector<float>();
  double sum = 0;
  for (float x : v) {
    ASSERT_GE(x, -2.f);
    ASSERT_LT(x, 5.f);
    sum += x;
  }
  EXPECT_NEAR(sum / v.size(), 1.5, 0.02);
}

TEST(Philox, NormalHasRequestedMoments) {
  const Tensor z = randn(Shape{400, 500}, 9, 0, 1.5f, 2.0f);
  const std::vector<double> v = z.to_vector<double>();
  double m = 0, m2 = 0;
  for (double x : v) m += x;
  m /= v.size();
  for (double x : v) m2 += (x - m) * (x - m);
  const double sd = std::sqrt(m2 / v.size());
  EXPECT_NEAR(m, 1.5, 0.02);
  EXPECT_NEAR(sd, 2.0, 0.02);
  for (double x : v) ASSERT_TRUE(std::isfinite(x));
}

TEST(Philox, SameSeedSameNumbersDifferentStreamsDiffer) {
  const auto a = randn(Shape{1000}, 5, 1).to_vector<float>();
  const auto b = randn(Shape{1000}, 5, 1).to_vector<float>();
  const auto c = randn(Shape{1000}, 5, 2).to_vector<float>();
  const auto d = randn(Shape{1000}, 6, 1).to_vector<float>();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, d);
  // Element i does not depend on the tensor's size: a prefix of a longer draw is the shorter draw.
  const auto longer = randn(Shape{1003}, 5, 1).to_vector<float>();
  EXPECT_TRUE(std::equal(a.begin(), a.end(), longer.begin()));
}

TEST(Philox, GpuDrawsTheSameNumbersAsCpu) {
  LN_REQUIRE_CUDA();
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    const auto cu = rand(Shape{3, 1001}, 11, 4, 0.f, 1.f, dt).to_vector<float>();
    const auto gu = rand(Shape{3, 1001}, 11, 4, 0.f, 1.f, dt, Device::cuda()).to_vector<float>();
    EXPECT_EQ(cu, gu) << "uniform " << dtype_name(dt);  // bitwise: only integer ops and exact scaling
    const auto cn = randn(Shape{3, 1001}, 11, 4, 0.f, 1.f, dt).to_vector<double>();
    const auto gn = randn(Shape{3, 1001}, 11, 4, 0.f, 1.f, dt, Device::cuda()).to_vector<double>();
    // log/sin/cos may differ by an ulp between the host libm and CUDA's.
    EXPECT_LT(livernet::testing::max_rel_error(gn, cn), dt == DType::f32 ? 1e-6 : 1e-2) << "normal " << dtype_name(dt);
  }
}
