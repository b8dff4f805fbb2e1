// Naive float64 reference implementations used by the tests (written for clarity, not speed).
// Layouts match the engine: NHWC activations, OHWI conv weights, row-major matrices.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/shape.h"
#include "kernels/nn.h"

namespace livernet::testing::ref {

using V = std::vector<double>;

// Convolution parameters in one call: stride, padding (top, bottom, left, right), dilation, groups.
inline kernels::Conv2dParams cp(int stride, int pt, int pb, int pl, int pr, int dil = 1, int groups = 1) {
  kernels::Conv2dParams p;
  p.stride_h = p.stride_w = stride;
  p.pad_top = pt;
  p.pad_bottom = pb;
  p.pad_left = pl;
  p.pad_right = pr;
  p.dilation_h = p.dilation_w = dil;
  p.groups = groups;
  return p;
}

inline V conv2d(const V& x, const Shape& xs, const V& w, const Shape& ws, const V* bias, const kernels::Conv2dParams& p,
                Shape* ys_out = nullptr) {
  const std::int64_t N = xs[0], H = xs[1], W = xs[2], C = xs[3];
  const std::int64_t O = ws[0], KH = ws[1], KW = ws[2], CG = ws[3];
  const std::int64_t G = p.groups, OG = O / G;
  const std::int64_t Ho = p.out_h(H, KH), Wo = p.out_w(W, KW);
  if (ys_out) *ys_out = Shape{N, Ho, Wo, O};
  V y(static_cast<std::size_t>(N * Ho * Wo * O), 0.0);
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t oh = 0; oh < Ho; ++oh)
      for (std::int64_t ow = 0; ow < Wo; ++ow)
        for (std::int64_t o = 0; o < O; ++o) {
          const std::int64_t g = o / OG;
          double acc = bias ? (*bias)[o] : 0.0;
          for (std::int64_t kh = 0; kh < KH; ++kh) {
            const std::int64_t h = oh * p.stride_h - p.pad_top + kh * p.dilation_h;
            if (h < 0 || h >= H) continue;
            for (std::int64_t kw = 0; kw < KW; ++kw) {
              const std::int64_t wi = ow * p.stride_w - p.pad_left + kw * p.dilation_w;
              if (wi < 0 || wi >= W) continue;
              for (std::int64_t c = 0; c < CG; ++c)
                acc += x[((n * H + h) * W + wi) * C + g * CG + c] * w[((o * KH + kh) * KW + kw) * CG + c];
            }
          }
          y[((n * Ho + oh) * Wo + ow) * O + o] = acc;
        }
  return y;
}

// Batch norm over the last dimension with the given statistics.
inline V bn_apply(const V& x, std::int64_t C, const V& mean, const V& var, const V* gamma, const V& beta, double eps,
                  bool relu) {
  V y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t c = i % static_cast<std::size_t>(C);
    double v = (x[i] - mean[c]) / std::sqrt(var[c] + eps) * (gamma ? (*gamma)[c] : 1.0) + beta[c];
    y[i] = relu ? std::max(v, 0.0) : v;
  }
  return y;
}

// Per-channel mean and biased variance of an [M, C] view.
inline void channel_stats(const V& x, std::int64_t C, V& mean, V& var) {
  const std::int64_t M = static_cast<std::int64_t>(x.size()) / C;
  mean.assign(C, 0.0);
  var.assign(C, 0.0);
  for (std::size_t i = 0; i < x.size(); ++i) mean[i % C] += x[i];
  for (auto& m : mean) m /= static_cast<double>(M);
  for (std::size_t i = 0; i < x.size(); ++i) var[i % C] += (x[i] - mean[i % C]) * (x[i] - mean[i % C]);
  for (auto& v : var) v /= static_cast<double>(M);
}

inline V pool2d(const V& x, const Shape& xs, const kernels::Pool2dParams& p, bool is_max) {
  const std::int64_t N = xs[0], H = xs[1], W = xs[2], C = xs[3];
  const std::int64_t Ho = p.out_h(H), Wo = p.out_w(W);
  V y(static_cast<std::size_t>(N * Ho * Wo * C));
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t oh = 0; oh < Ho; ++oh)
      for (std::int64_t ow = 0; ow < Wo; ++ow)
        for (std::int64_t c = 0; c < C; ++c) {
          double acc = is_max ? -std::numeric_limits<double>::infinity() : 0.0;
          int count = 0;
          for (int kh = 0; kh < p.kernel_h; ++kh)
            for (int kw = 0; kw < p.kernel_w; ++kw) {
              const std::int64_t h = oh * p.stride_h - p.pad_h + kh, w = ow * p.stride_w - p.pad_w + kw;
              if (h < 0 || h >= H || w < 0 || w >= W) continue;
              const double v = x[((n * H + h) * W + w) * C + c];
              acc = is_max ? std::max(acc, v) : acc + v;
              ++count;
            }
          if (!is_max) acc /= p.count_include_pad ? p.kernel_h * p.kernel_w : count;
          y[((n * Ho + oh) * Wo + ow) * C + c] = acc;
        }
  return y;
}

// C[m, n] = op(A) op(B), row-major.
inline V matmul(const V& a, const Shape& as, bool ta, const V& b, const Shape& bs, bool tb) {
  const std::int64_t m = ta ? as[1] : as[0], k = ta ? as[0] : as[1], n = tb ? bs[0] : bs[1];
  V c(static_cast<std::size_t>(m * n), 0.0);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (std::int64_t l = 0; l < k; ++l)
        acc += (ta ? a[l * as[1] + i] : a[i * as[1] + l]) * (tb ? b[j * bs[1] + l] : b[l * bs[1] + j]);
      c[i * n + j] = acc;
    }
  return c;
}

// torch.nn.functional.cross_entropy (mean reduction) with optional class weights and label smoothing.
inline double cross_entropy(const V& z, std::int64_t N, std::int64_t K, const std::vector<std::int64_t>& y,
                            const V* w, double eps) {
  double total = 0, norm = 0;
  for (std::int64_t i = 0; i < N; ++i) {
    double m = -INFINITY;
    for (std::int64_t k = 0; k < K; ++k) m = std::max(m, z[i * K + k]);
    double s = 0;
    for (std::int64_t k = 0; k < K; ++k) s += std::exp(z[i * K + k] - m);
    const double ls = std::log(s);
    auto logp = [&](std::int64_t k) { return z[i * K + k] - m - ls; };
    const double wy = w ? (*w)[y[i]] : 1.0;
    double smooth = 0;
    for (std::int64_t k = 0; k < K; ++k) smooth += (w ? (*w)[k] : 1.0) * -logp(k);
    total += (1 - eps) * wy * -logp(y[i]) + eps / K * smooth;
    norm += wy;
  }
  return total / norm;
}

}  // namespace livernet::testing::ref
