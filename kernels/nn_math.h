// Per-element math of the NN ops, shared by the CPU and CUDA backends (host and device).
#pragma once

#include <cmath>
#include <cstdint>

#include "core/macros.h"
#include "core/philox.h"
#include "kernels/math.h"

namespace livernet::kernels {

// ---- unary gradients: dx given x, y = op(x) and dy ----------------------------------------------------
template <UnaryOp OP>
LN_HD_INLINE float unary_grad(float x, float y, float dy) {
  if constexpr (OP == UnaryOp::neg) return -dy;
  else if constexpr (OP == UnaryOp::abs) return x > 0.f ? dy : (x < 0.f ? -dy : 0.f);
  else if constexpr (OP == UnaryOp::relu) return relu_backward_f(y, dy);
  else if constexpr (OP == UnaryOp::exp) return dy * y;
  else if constexpr (OP == UnaryOp::log) return dy / x;
  else if constexpr (OP == UnaryOp::sqrt) return dy * 0.5f / y;
  else if constexpr (OP == UnaryOp::rsqrt) return dy * -0.5f * y * y * y;
  else if constexpr (OP == UnaryOp::sigmoid) return dy * y * (1.f - y);
  else if constexpr (OP == UnaryOp::tanh) return dy * (1.f - y * y);
  else if constexpr (OP == UnaryOp::square) return dy * 2.f * x;
  else return -dy * y * y;  // reciprocal
}

// ---- batch norm ---------------------------------------------------------------------------------------
// y = (x - mean) * invstd * gamma + beta, optionally through relu.
LN_HD_INLINE float bn_apply(float x, float mean, float invstd, float gamma, float beta, bool relu) {
  const float y = (x - mean) * invstd * gamma + beta;
  return relu ? relu_f(y) : y;
}

// Train-mode input gradient for one element, with the channel sums sum_dy = sum(dy) and
// sum_dy_xhat = sum(dy * xhat) over the M = N*H*W elements of the channel.
LN_HD_INLINE float bn_backward_train(float dy, float x, float mean, float invstd, float gamma, float sum_dy,
                                     float sum_dy_xhat, float inv_m) {
  const float xhat = (x - mean) * invstd;
  return gamma * invstd * (dy - inv_m * sum_dy - xhat * inv_m * sum_dy_xhat);
}

// ---- dropout ------------------------------------------------------------------------------------------
// Element i is kept when its Philox uniform is >= p; kept values are scaled by 1 / (1 - p).
LN_HD_INLINE bool dropout_keep(std::uint64_t seed, std::uint64_t stream, std::uint64_t i, float p) {
  return philox_uniform_at(seed, stream, i, 0.f, 1.f) >= p;
}

// ---- binary cross-entropy -------------------------------------------------------------------------------
// Stable: max(z, 0) - z * t + log(1 + exp(-|z|)).
LN_HD_INLINE float bce_with_logits_elem(float z, float t) {
  return fmaxf(z, 0.f) - z * t + log1pf(expf(-fabsf(z)));
}
LN_HD_INLINE float bce_with_logits_grad(float z, float t) { return sigmoid_f(z) - t; }

// On probabilities, with PyTorch's clamp of the logs at -100.
LN_HD_INLINE float bce_elem(float p, float t) {
  const float lp = fmaxf(logf(p), -100.f);
  const float l1p = fmaxf(logf(1.f - p), -100.f);
  return -(t * lp + (1.f - t) * l1p);
}
LN_HD_INLINE float bce_grad(float p, float t) { return (p - t) / fmaxf((1.f - p) * p, 1e-12f); }

// ---- softmax cross-entropy gradient ------------------------------------------------------------------------
// d/dz_k of the per-sample loss (1 - eps) * w_y * (-log p_y) + (eps / K) * sum_j w_j * (-log p_j),
// where S = sum_j w_j (K without class weights).
LN_HD_INLINE float cross_entropy_grad(float p_k, bool is_label, float w_label, float w_k, float S, float eps,
                                      float inv_k) {
  return (1.f - eps) * w_label * (p_k - (is_label ? 1.f : 0.f)) + eps * inv_k * (S * p_k - w_k);
}

// ---- pooling ------------------------------------------------------------------------------------------
// Along one axis (I: int on the GPU, int64 on the CPU), window o of size k, stride s and padding pad starts
// at o * s - pad; its in-bounds taps are [lo, hi) of an input of extent n (empty when lo >= hi: a window
// entirely in the padding).
template <typename I>
LN_HD_INLINE void pool_taps(I o, int k, int s, int pad, I n, I& lo, I& hi) {
  const I first = o * s - pad;
  lo = first > 0 ? first : 0;
  hi = first + k < n ? first + k : n;
}

// The windows [lo, hi] (possibly empty: lo > hi) among out whose taps include input coordinate i.
template <typename I>
LN_HD_INLINE void pool_covering(I i, int k, int s, int pad, I out, I& lo, I& hi) {
  const I ip = i + pad;
  lo = ip < k ? 0 : (ip - k) / s + 1;
  hi = ip / s < out - 1 ? ip / s : out - 1;
}

// Number of window taps inside the input (for count_include_pad = false).
LN_HD_INLINE int pool_window_count(int h0, int w0, int kh, int kw, int H, int W) {
  const int hs = h0 < 0 ? 0 : h0, ws = w0 < 0 ? 0 : w0;
  const int he = h0 + kh > H ? H : h0 + kh, we = w0 + kw > W ? W : w0 + kw;
  return (he - hs) * (we - ws);
}

}  // namespace livernet::kernels
