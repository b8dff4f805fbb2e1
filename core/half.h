// bfloat16 and IEEE binary16 storage types with round-to-nearest-even conversions.
// The same code runs on host and device, so CPU tests exercise the GPU's arithmetic.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/macros.h"

namespace livernet {

LN_HD_INLINE std::uint32_t float_as_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

LN_HD_INLINE float bits_as_float(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// float -> bf16, round to nearest even; NaN stays a (quiet) NaN.
LN_HD_INLINE std::uint16_t float_to_bf16_bits(float f) {
  std::uint32_t u = float_as_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

LN_HD_INLINE float bf16_bits_to_float(std::uint16_t h) { return bits_as_float(static_cast<std::uint32_t>(h) << 16); }

// float -> binary16, round to nearest even, with subnormals, overflow to inf and NaN preserved.
LN_HD_INLINE std::uint16_t float_to_f16_bits(float f) {
  const std::uint32_t u = float_as_bits(f);
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  const std::uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));  // NaN
  if (abs >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero) in binary16: value = m * 2^-24, m integer in [0, 1024].
    if (abs < 0x33000000u) return static_cast<std::uint16_t>(sign);  // < 2^-25: rounds to 0
    const std::uint32_t exp = abs >> 23;                            // biased f32 exponent
    const std::uint32_t mant = (abs & 0x7fffffu) | 0x800000u;         // with hidden bit
    const std::uint32_t shift = 126u - exp;                           // bits to drop: (exp - 127) + 24 -> mant >> (126 - exp)
    std::uint32_t m = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (m & 1u))) ++m;
    return static_cast<std::uint16_t>(sign | m);
  }
  // Normal: rebias exponent (127 -> 15) and round the 13 dropped mantissa bits.
  std::uint32_t v = abs - 0x38000000u;  // (127-15) << 23
  v += 0x0fffu + ((v >> 13) & 1u);
  return static_cast<std::uint16_t>(sign | (v >> 13));
}

LN_HD_INLINE float f16_bits_to_float(std::uint16_t h) {
  const std::uint32_t sign = (static_cast<std::uint32_t>(h) & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  const std::uint32_t mant = h & 0x3ffu;
  if (exp == 0x1fu) return bits_as_float(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  if (exp == 0) {
    if (mant == 0) return bits_as_float(sign);
    // subnormal: mant * 2^-24
    const float v = static_cast<float>(mant) * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  return bits_as_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

// Storage types: 16 bits, no arithmetic; convert to float to compute.
struct bf16 {
  std::uint16_t bits = 0;
  bf16() = default;
  LN_HD explicit bf16(float f) : bits(float_to_bf16_bits(f)) {}
  LN_HD explicit operator float() const { return bf16_bits_to_float(bits); }
  LN_HD static bf16 from_bits(std::uint16_t b) {
    bf16 r;
    r.bits = b;
    return r;
  }
};

struct f16 {
  std::uint16_t bits = 0;
  f16() = default;
  LN_HD explicit f16(float f) : bits(float_to_f16_bits(f)) {}
  LN_HD explicit operator float() const { return f16_bits_to_float(bits); }
  LN_HD static f16 from_bits(std::uint16_t b) {
    f16 r;
    r.bits = b;
    return r;
  }
};

// Uniform conversions used by templated kernels: every float type to and from float.
template <typename T>
LN_HD_INLINE float to_float(T v) {
  return static_cast<float>(v);
}
template <typename T>
LN_HD_INLINE T from_float(float v) {
  return static_cast<T>(v);
}
template <>
LN_HD_INLINE bf16 from_float<bf16>(float v) {
  return bf16(v);
}
template <>
LN_HD_INLINE f16 from_float<f16>(float v) {
  return f16(v);
}

}  // namespace livernet
