// Parameter initialisers. All draws come from Philox (on the CPU, then copied to the tensor's device),
// so a model initialised with the same seed is identical on every device.
//
// Streams: each call takes an explicit (seed, stream); layers use init::next() which hands out
// (global seed, consecutive streams) in construction order, so building the same model after
// init::set_seed(s) always gives the same weights.
#pragma once

#include <cstdint>
#include <utility>

#include "core/tensor.h"

namespace livernet::init {

struct Rng {
  std::uint64_t seed;
  std::uint64_t stream;
};
// Sets the seed for init::next() and restarts its stream counter.
void set_seed(std::uint64_t seed);
// The next (seed, stream) pair.
Rng next();

enum class FanMode { fan_in, fan_out };
// (fan_in, fan_out) of a weight: OHWI conv [O, kh, kw, I] -> (kh*kw*I, kh*kw*O); linear [O, I] -> (I, O).
std::pair<std::int64_t, std::int64_t> fans(const Shape& weight_shape);

// He/Kaiming: normal with std = gain / sqrt(fan), uniform with bound = gain * sqrt(3 / fan);
// gain defaults to sqrt(2) (ReLU).
void kaiming_normal_(Tensor& w, Rng rng, FanMode mode = FanMode::fan_in, float gain = 1.41421356f);
void kaiming_uniform_(Tensor& w, Rng rng, FanMode mode = FanMode::fan_in, float gain = 1.41421356f);
// Glorot/Xavier: std = gain * sqrt(2 / (fan_in + fan_out)); bound = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_normal_(Tensor& w, Rng rng, float gain = 1.f);
void xavier_uniform_(Tensor& w, Rng rng, float gain = 1.f);
// Normal(mean, std) truncated to [mean + a*std, mean + b*std] (resampled, not clipped).
void trunc_normal_(Tensor& w, Rng rng, float mean, float std, float a = -2.f, float b = 2.f);
void uniform_(Tensor& w, Rng rng, float lo, float hi);
void normal_(Tensor& w, Rng rng, float mean, float std);
void constant_(Tensor& w, float value);
inline void zeros_(Tensor& w) { constant_(w, 0.f); }
inline void ones_(Tensor& w) { constant_(w, 1.f); }

}  // namespace livernet::init
