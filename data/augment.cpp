#include "data/augment.h"

#include <algorithm>
#include <cmath>

#include "core/philox.h"

namespace livernet::data {

void make_input(const Tensor& hu, const InputConfig& in, const AugmentConfig& aug, std::uint64_t seed,
                std::uint64_t epoch, std::uint64_t sample, float* out) {
  LN_CHECK(hu.dim() == 2 && hu.dtype() == DType::f32 && hu.is_cpu(), "make_input: expected an [H, W] f32 CPU image");
  LN_CHECK(in.size >= 1, "make_input: output size must be positive");
  const std::int64_t H = hu.size(0), W = hu.size(1), S = in.size;
  const float* src = hu.data<float>();
  // Streams: geometry/intensity draws and per-pixel noise, both keyed by (epoch, sample).
  const std::uint64_t stream = (epoch << 32) ^ sample;
  auto uni = [&](std::uint64_t k, float lo, float hi) { return philox_uniform_at(seed, stream, k, lo, hi); };

  // Map from output coordinates in [-1, 1] to source coordinates in [-1, 1]: p_src = A * p_out + t.
  double a00 = 1, a01 = 0, a10 = 0, a11 = 1, tx = 0, ty = 0, shift = 0;
  if (aug.enabled) {
    if (aug.flips && uni(0, 0, 1) < 0.5f) a00 = -a00, a10 = -a10;  // horizontal flip
    if (aug.flips && uni(1, 0, 1) < 0.5f) a01 = -a01, a11 = -a11;  // vertical flip
    if (aug.rot90) {
      const int k = std::min(3, static_cast<int>(uni(2, 0, 4)));
      for (int i = 0; i < k; ++i) {  // compose with a 90-degree rotation
        const double b00 = -a10, b01 = -a11, b10 = a00, b11 = a01;
        a00 = b00, a01 = b01, a10 = b10, a11 = b11;
      }
    }
    const double th = uni(3, -aug.rotation_deg, aug.rotation_deg) * M_PI / 180.0;
    const double zoom = uni(4, 1 - aug.scale, 1 + aug.scale);
    const double c = std::cos(th) / zoom, s = std::sin(th) / zoom;
    const double r00 = c * a00 - s * a10, r01 = c * a01 - s * a11, r10 = s * a00 + c * a10, r11 = s * a01 + c * a11;
    a00 = r00, a01 = r01, a10 = r10, a11 = r11;
    tx = uni(5, -aug.translate, aug.translate) * 2;
    ty = uni(6, -aug.translate, aug.translate) * 2;
    shift = uni(7, -aug.hu_shift, aug.hu_shift);
  }
  const float lo = in.window.level - in.window.width / 2, inv = 2.f / in.window.width;
  for (std::int64_t i = 0; i < S; ++i) {
    const double v = (i + 0.5) / S * 2 - 1;
    for (std::int64_t j = 0; j < S; ++j) {
      const double u = (j + 0.5) / S * 2 - 1;
      const double su = a00 * u + a01 * v + tx, sv = a10 * u + a11 * v + ty;
      // Half-pixel centres: without augmentation this is resize_bilinear exactly.
      const double fx = std::clamp((su + 1) / 2 * W - 0.5, 0.0, static_cast<double>(W - 1));
      const double fy = std::clamp((sv + 1) / 2 * H - 0.5, 0.0, static_cast<double>(H - 1));
      const std::int64_t x0 = static_cast<std::int64_t>(fx), y0 = static_cast<std::int64_t>(fy);
      const std::int64_t x1 = std::min(x0 + 1, W - 1), y1 = std::min(y0 + 1, H - 1);
      const float wx = static_cast<float>(fx - x0), wy = static_cast<float>(fy - y0);
      const float top = src[y0 * W + x0] * (1 - wx) + src[y0 * W + x1] * wx;
      const float bot = src[y1 * W + x0] * (1 - wx) + src[y1 * W + x1] * wx;
      float value = top * (1 - wy) + bot * wy;
      if (aug.enabled) {
        value += static_cast<float>(shift);
        if (aug.noise_std > 0) value += philox_normal_at(seed, stream ^ 0x9e3779b97f4a7c15ull, static_cast<std::uint64_t>(i * S + j), 0.f, aug.noise_std);
      }
      out[i * S + j] = std::clamp((value - lo) * inv - 1.f, -1.f, 1.f);
    }
  }
}

}  // namespace livernet::data
