// bf16 / f16 conversions: known values, exhaustive round trips, and round-to-nearest-even against
// independent references (the compiler's _Float16 and a double-precision nearest search for bf16).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "core/dtype.h"
#include "core/error.h"
#include "core/half.h"
#include "core/philox.h"
#include "kernels/convert_math.h"

using namespace livernet;

namespace {

// Reference bf16 rounding: of the two bf16 values around x, the nearer; ties go to the even mantissa.
std::uint16_t bf16_reference(float x) {
  if (std::isnan(x)) return 0x7fc0;
  std::uint32_t u = float_as_bits(x);
  const std::uint16_t lo = static_cast<std::uint16_t>(u >> 16);
  if ((u & 0xffffu) == 0) return lo;
  const std::uint16_t hi = static_cast<std::uint16_t>(lo + 1);
  const double dl = std::fabs(static_cast<double>(bf16_bits_to_float(lo)) - x);
  const double dh = std::fabs(static_cast<double>(bf16_bits_to_float(hi)) - x);
  if (std::isinf(bf16_bits_to_float(hi)) && !std::isinf(x)) {
    // The upper neighbour is infinity: round to it only past the midpoint of the last finite step.
    const double half_ulp = std::ldexp(1.0, 127 - 8);  // (2^128 - max_bf16) equivalent step / 2
    return (std::fabs(static_cast<double>(x)) - std::fabs(static_cast<double>(bf16_bits_to_float(lo)))) >= half_ulp
               ? hi : lo;
  }
  if (dl < dh) return lo;
  if (dh < dl) return hi;
  return (lo & 1) ? hi : lo;
}

float random_float(std::uint64_t i) {
  // Random bit patterns cover every exponent, subnormals and specials.
  const Philox4x32 r = philox_block(1234, 0, i);
  return bits_as_float(r.v[0]);
}

}  // namespace

TEST(DType, NamesSizesParse) {
  EXPECT_EQ(dtype_size(DType::f32), 4u);
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(dtype_size(DType::i64), 8u);
  EXPECT_EQ(parse_dtype("bfloat16"), DType::bf16);
  EXPECT_EQ(parse_dtype("f16"), DType::f16);
  EXPECT_STREQ(dtype_name(DType::u8), "u8");
  try {
    parse_dtype("float64");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("float64"), std::string::npos);
  }
}

TEST(Half, KnownValues) {
  EXPECT_EQ(float_to_f16_bits(1.0f), 0x3c00);
  EXPECT_EQ(float_to_f16_bits(-2.0f), 0xc000);
  EXPECT_EQ(float_to_f16_bits(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_f16_bits(65520.0f), 0x7c00);           // rounds to inf
  EXPECT_EQ(float_to_f16_bits(65519.99f), 0x7bff);
  EXPECT_EQ(float_to_f16_bits(5.9604645e-08f), 0x0001);     // smallest subnormal
  EXPECT_EQ(float_to_f16_bits(2.9802322e-08f), 0x0000);     // exactly half of it: ties to even (0)
  EXPECT_EQ(float_to_f16_bits(1.0f + 1.0f / 2048), 0x3c00); // tie between 1 and 1+2^-10 -> even
  EXPECT_EQ(float_to_f16_bits(1.0f + 3.0f / 2048), 0x3c02); // tie -> even (upwards)
  EXPECT_TRUE(std::isnan(f16_bits_to_float(float_to_f16_bits(std::nanf("")))));
  EXPECT_EQ(f16_bits_to_float(0x3555), 0.333251953125f);
  EXPECT_EQ(float_to_bf16_bits(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16_bits(3.14159265f), 0x4049);
  EXPECT_EQ(bf16_bits_to_float(0x4049), 3.140625f);
  EXPECT_EQ(float_to_bf16_bits(bits_as_float(0x3f808000u)), 0x3f80);  // tie -> even
  EXPECT_EQ(float_to_bf16_bits(bits_as_float(0x3f818000u)), 0x3f82);  // tie -> even (upwards)
  EXPECT_EQ(float_to_bf16_bits(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_TRUE(std::isnan(bf16_bits_to_float(float_to_bf16_bits(std::nanf("")))));
}

TEST(Half, F16RoundTripIsExactForEveryValue) {
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_bits_to_float(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_bits_to_float(float_to_f16_bits(f))));
      continue;
    }
    ASSERT_EQ(float_to_f16_bits(f), h) << "f16 bits 0x" << std::hex << h;
  }
}

TEST(Half, BF16RoundTripIsExactForEveryValue) {
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16_bits_to_float(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_bf16_bits(f), h) << "bf16 bits 0x" << std::hex << h;
  }
}

#if defined(__FLT16_MAX__)
TEST(Half, F16MatchesCompilerFloat16OnRandomFloats) {
  for (std::uint64_t i = 0; i < 2'000'000; ++i) {
    const float x = random_float(i);
    const _Float16 ref = static_cast<_Float16>(x);
    std::uint16_t ref_bits;
    std::memcpy(&ref_bits, &ref, 2);
    if (std::isnan(x)) continue;
    ASSERT_EQ(float_to_f16_bits(x), ref_bits) << "x = " << x << " bits 0x" << std::hex << float_as_bits(x);
  }
}
#endif

TEST(Half, BF16MatchesNearestEvenReferenceOnRandomFloats) {
  for (std::uint64_t i = 0; i < 2'000'000; ++i) {
    const float x = random_float(i);
    if (std::isnan(x) || std::isinf(x)) continue;
    ASSERT_EQ(float_to_bf16_bits(x), bf16_reference(x)) << "x = " << x << " bits 0x" << std::hex << float_as_bits(x);
  }
}

TEST(Convert, FloatToIntegerSaturatesAndMapsNaNToZero) {
  using kernels::convert;
  EXPECT_EQ(convert<std::int32_t>(3.9f), 3);
  EXPECT_EQ(convert<std::int32_t>(-3.9f), -3);
  EXPECT_EQ(convert<std::int32_t>(1e20f), std::numeric_limits<std::int32_t>::max());
  EXPECT_EQ(convert<std::uint8_t>(-5.0), 0);
  EXPECT_EQ(convert<std::uint8_t>(300.0), 255);
  EXPECT_EQ(convert<std::int64_t>(std::nanf("")), 0);
  EXPECT_EQ(static_cast<float>(convert<bf16>(std::int32_t{3})), 3.0f);
  EXPECT_EQ(convert<float>(f16(0.5f)), 0.5f);
}
