// Philox4x32-10 counter-based random numbers (Salmon et al., "Parallel Random Numbers: As Easy as
// 1, 2, 3", SC'11). Host and device share this code, so a given (seed, stream, index) produces the
// same bits on the CPU and on the GPU.
//
// Layout used throughout livernet: key = seed; counter = {block_lo, block_hi, stream_lo, stream_hi}
// where `block` = element_index / 4 and `stream` separates independent uses of one seed (a parameter's
// initialisation, one dropout call, one augmentation sample). Each block yields four 32-bit words.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/macros.h"

namespace livernet {

struct Philox4x32 {
  std::uint32_t v[4];
};

LN_HD_INLINE void philox_mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(p >> 32);
  lo = static_cast<std::uint32_t>(p);
}

LN_HD_INLINE Philox4x32 philox4x32_10(Philox4x32 ctr, std::uint32_t k0, std::uint32_t k1) {
  constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    std::uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(kM0, ctr.v[0], hi0, lo0);
    philox_mulhilo(kM1, ctr.v[2], hi1, lo1);
    ctr = Philox4x32{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    k0 += kW0;
    k1 += kW1;
  }
  return ctr;
}

// The four words of block `block` in stream `stream` for `seed`.
LN_HD_INLINE Philox4x32 philox_block(std::uint64_t seed, std::uint64_t stream, std::uint64_t block) {
  const Philox4x32 ctr{{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                        static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)}};
  return philox4x32_10(ctr, static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
}

// Uniform in [0, 1) with 24 bits of resolution (exactly representable in float).
LN_HD_INLINE float philox_uniform01(std::uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }
// Uniform in (0, 1]: safe for log().
LN_HD_INLINE float philox_uniform01_open0(std::uint32_t x) {
  return static_cast<float>((x >> 8) + 1u) * (1.0f / 16777216.0f);
}

// Two standard normals from two words (Box-Muller).
LN_HD_INLINE void philox_box_muller(std::uint32_t a, std::uint32_t b, float& z0, float& z1) {
  const float u1 = philox_uniform01_open0(a);
  const float u2 = philox_uniform01(b);
  const float r = sqrtf(-2.0f * logf(u1));
  const float theta = 6.28318530717958647692f * u2;
#if defined(__CUDA_ARCH__)
  float s, c;
  sincosf(theta, &s, &c);
  z0 = r * c;
  z1 = r * s;
#else
  z0 = r * std::cos(theta);
  z1 = r * std::sin(theta);
#endif
}

// Element i of the uniform [lo, hi) sequence of (seed, stream).
LN_HD_INLINE float philox_uniform_at(std::uint64_t seed, std::uint64_t stream, std::uint64_t i, float lo, float hi) {
  const Philox4x32 r = philox_block(seed, stream, i >> 2);
  return lo + (hi - lo) * philox_uniform01(r.v[i & 3]);
}

// Element i of the normal(mean, std) sequence of (seed, stream).
LN_HD_INLINE float philox_normal_at(std::uint64_t seed, std::uint64_t stream, std::uint64_t i, float mean, float stddev) {
  const Philox4x32 r = philox_block(seed, stream, i >> 2);
  const unsigned lane = static_cast<unsigned>(i & 3);
  float z0, z1;
  if (lane < 2) {
    philox_box_muller(r.v[0], r.v[1], z0, z1);
  } else {
    philox_box_muller(r.v[2], r.v[3], z0, z1);
  }
  return mean + stddev * ((lane & 1) ? z1 : z0);
}

}  // namespace livernet
