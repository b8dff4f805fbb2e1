#include "layers/init.h"

#include <atomic>
#include <cmath>

#include "core/philox.h"
#include "kernels/tensor_ops.h"

namespace livernet::init {

namespace {
std::atomic<std::uint64_t> g_seed{0};
std::atomic<std::uint64_t> g_stream{0};

// Replaces w's values with host-computed ones (keeps its dtype and device).
void assign(Tensor& w, const std::vector<float>& v) {
  copy_(w, Tensor::from_vector(v, w.shape()));
}
}  // namespace

void set_seed(std::uint64_t seed) {
  g_seed = seed;
  g_stream = 0;
}

Rng next() { return Rng{g_seed.load(), g_stream++}; }

std::pair<std::int64_t, std::int64_t> fans(const Shape& s) {
  LN_CHECK(s.size() >= 2, "init: cannot compute fans of shape ", s.str());
  if (s.size() == 2) return {s[1], s[0]};
  std::int64_t receptive = 1;
  for (int i = 1; i + 1 < s.size(); ++i) receptive *= s[i];
  return {receptive * s.back(), receptive * s[0]};  // OHWI
}

void normal_(Tensor& w, Rng rng, float mean, float std) {
  copy_(w, randn(w.shape(), rng.seed, rng.stream, mean, std));
}

void uniform_(Tensor& w, Rng rng, float lo, float hi) {
  copy_(w, rand(w.shape(), rng.seed, rng.stream, lo, hi));
}

void kaiming_normal_(Tensor& w, Rng rng, FanMode mode, float gain) {
  const auto [fi, fo] = fans(w.shape());
  normal_(w, rng, 0.f, gain / std::sqrt(static_cast<float>(mode == FanMode::fan_in ? fi : fo)));
}

void kaiming_uniform_(Tensor& w, Rng rng, FanMode mode, float gain) {
  const auto [fi, fo] = fans(w.shape());
  const float bound = gain * std::sqrt(3.f / static_cast<float>(mode == FanMode::fan_in ? fi : fo));
  uniform_(w, rng, -bound, bound);
}

void xavier_normal_(Tensor& w, Rng rng, float gain) {
  const auto [fi, fo] = fans(w.shape());
  normal_(w, rng, 0.f, gain * std::sqrt(2.f / static_cast<float>(fi + fo)));
}

void xavier_uniform_(Tensor& w, Rng rng, float gain) {
  const auto [fi, fo] = fans(w.shape());
  const float bound = gain * std::sqrt(6.f / static_cast<float>(fi + fo));
  uniform_(w, rng, -bound, bound);
}

void trunc_normal_(Tensor& w, Rng rng, float mean, float std, float a, float b) {
  LN_CHECK(a < b, "trunc_normal_: empty interval [", a, ", ", b, "]");
  const std::int64_t n = w.numel();
  std::vector<float> v(static_cast<std::size_t>(n));
  // Element i tries the normals at indices i*64 + j of its stream until one falls inside; with the
  // usual [-2, 2] bounds the chance of 64 misses is below 1e-80.
  for (std::int64_t i = 0; i < n; ++i) {
    float z = 0.f;
    for (std::uint64_t j = 0; j < 64; ++j) {
      z = philox_normal_at(rng.seed, rng.stream, static_cast<std::uint64_t>(i) * 64 + j, 0.f, 1.f);
      if (z >= a && z <= b) break;
      z = std::fmin(std::fmax(z, a), b);
    }
    v[i] = mean + std * z;
  }
  assign(w, v);
}

void constant_(Tensor& w, float value) { fill_(w, value); }

}  // namespace livernet::init
