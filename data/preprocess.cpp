#include "data/preprocess.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/tensor_ops.h"

namespace livernet::data {

Tensor apply_window(const Tensor& hu_in, const HuWindow& w) {
  LN_CHECK(w.width > 0.f, "HU window width must be positive, got ", w.width);
  const Tensor hu = to_dtype(hu_in.to(Device::cpu()), DType::f32);
  Tensor out = Tensor::empty(hu.shape());
  const float lo = w.level - w.width / 2, inv = 2.f / w.width;
  const float* s = hu.data<float>();
  float* d = out.data<float>();
  for (std::int64_t i = 0; i < hu.numel(); ++i) {
    LN_CHECK(std::isfinite(s[i]), "image contains a non-finite value (NaN or infinity) at element ", i);
    d[i] = std::clamp((s[i] - lo) * inv - 1.f, -1.f, 1.f);
  }
  return out;
}

Tensor scale_8bit(const Tensor& x_in) {
  const Tensor x = to_dtype(x_in.to(Device::cpu()), DType::f32);
  Tensor out = Tensor::empty(x.shape());
  const float* s = x.data<float>();
  float* d = out.data<float>();
  for (std::int64_t i = 0; i < x.numel(); ++i) d[i] = s[i] / 127.5f - 1.f;
  return out;
}

Tensor resize_bilinear(const Tensor& x_in, std::int64_t oh, std::int64_t ow) {
  LN_CHECK(oh > 0 && ow > 0, "resize: output size must be positive");
  const bool batched = x_in.dim() == 4;
  LN_CHECK(batched || x_in.dim() == 3, "resize: expected [N, H, W, C] or [H, W, C], got ", x_in.shape().str());
  const Tensor x = to_dtype((batched ? x_in : x_in.reshape({1, x_in.size(0), x_in.size(1), x_in.size(2)})).to(Device::cpu()), DType::f32);
  const std::int64_t N = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  if (H == oh && W == ow) return to_dtype(x_in.to(Device::cpu()), DType::f32).clone();
  Tensor out = Tensor::empty(Shape{N, oh, ow, C});
  const float* s = x.data<float>();
  float* d = out.data<float>();
  const double sh = static_cast<double>(H) / oh, sw = static_cast<double>(W) / ow;
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t i = 0; i < oh; ++i) {
      const double fy = std::max(0.0, (i + 0.5) * sh - 0.5);
      const std::int64_t y0 = std::min<std::int64_t>(static_cast<std::int64_t>(fy), H - 1);
      const std::int64_t y1 = std::min<std::int64_t>(y0 + 1, H - 1);
      const float wy = static_cast<float>(fy - y0);
      for (std::int64_t j = 0; j < ow; ++j) {
        const double fx = std::max(0.0, (j + 0.5) * sw - 0.5);
        const std::int64_t x0 = std::min<std::int64_t>(static_cast<std::int64_t>(fx), W - 1);
        const std::int64_t x1 = std::min<std::int64_t>(x0 + 1, W - 1);
        const float wx = static_cast<float>(fx - x0);
        for (std::int64_t c = 0; c < C; ++c) {
          auto at = [&](std::int64_t yy, std::int64_t xx) { return s[((n * H + yy) * W + xx) * C + c]; };
          const float top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx;
          const float bot = at(y1, x0) * (1 - wx) + at(y1, x1) * wx;
          d[((n * oh + i) * ow + j) * C + c] = top * (1 - wy) + bot * wy;
        }
      }
    }
  return batched ? out : out.reshape({oh, ow, C});
}

}  // namespace livernet::data
