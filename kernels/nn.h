// Raw neural-network ops (no autograd): convolution, batch norm, pooling, GEMM, dropout, losses and
// the copies they need. Tensors are NHWC; convolution weights are OHWI ([Cout, kh, kw, Cin/groups]).
// Each op checks its arguments here and dispatches to kernels/cpu or kernels/cuda (LN_DISPATCH).
// The autograd wrappers are in layers/functional.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/math.h"

namespace livernet::kernels {

// ---- convolution ---------------------------------------------------------------------------------------
struct Conv2dParams {
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int dilation_h = 1, dilation_w = 1;
  int groups = 1;

  static Conv2dParams make(int stride, int pad_h, int pad_w) {
    Conv2dParams p;
    p.stride_h = p.stride_w = stride;
    p.pad_top = p.pad_bottom = pad_h;
    p.pad_left = p.pad_right = pad_w;
    return p;
  }
  bool symmetric() const { return pad_top == pad_bottom && pad_left == pad_right; }
  std::int64_t out_h(std::int64_t h, std::int64_t kh) const {
    return (h + pad_top + pad_bottom - dilation_h * (kh - 1) - 1) / stride_h + 1;
  }
  std::int64_t out_w(std::int64_t w, std::int64_t kw) const {
    return (w + pad_left + pad_right - dilation_w * (kw - 1) - 1) / stride_w + 1;
  }
  std::string str() const;
};

// The output shape of conv2d(x, w, p), after checking that x, w and p fit together.
Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dParams& p);
// y = conv(x, w) (+ bias); bias may be undefined.
Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p);
// dx from dy and w.
Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape, const Conv2dParams& p);
// dw (and dbias when requested) from dy and x. dw has w's dtype; dbias is f32.
void conv2d_backward_weights(const Tensor& dy, const Tensor& x, const Conv2dParams& p, Tensor& dw, Tensor* dbias);
// Allow TF32 tensor-core math for f32 convolutions and GEMMs on the GPU (off by default: f32 results
// then match the CPU to 1e-5). Process-wide.
void set_allow_tf32(bool allow);
bool allow_tf32();
// Deterministic algorithms only (cuDNN), no atomics in reductions. Process-wide.
void set_deterministic(bool on);
bool deterministic();

// Floating-point operations issued by conv2d (forward, backward data, backward weights) and gemm, counted
// as 2 per multiply-add, since the last reset (process-wide; for benchmarks' MFU figures).
std::uint64_t flop_count();
void reset_flop_count();

// ---- batch normalisation (per channel = last dimension; statistics in f32) -------------------------------
struct BatchNormState {
  Tensor save_mean;    // [C] f32: batch mean (train) or running mean (eval)
  Tensor save_invstd;  // [C] f32: 1/sqrt(var + eps) of the batch (train) or of the running variance (eval)
};
// Train mode: normalises with the batch statistics (biased variance) and, when running_mean/var are
// defined, updates them: running = (1 - momentum) * running + momentum * batch (unbiased variance),
// as PyTorch does (Keras' momentum 0.99 is momentum 0.01 here). gamma may be undefined (= 1).
// relu = true fuses y = max(y, 0).
Tensor batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                        Tensor& running_var, float momentum, float eps, bool relu, BatchNormState& state);
// Eval mode: normalises with the running statistics.
Tensor batch_norm_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                       const Tensor& running_var, float eps, bool relu, BatchNormState& state);
// Gradients. y is the forward output (needed only when relu was fused; may be undefined otherwise).
// train = true differentiates through the batch statistics; false treats them as constants.
// dgamma / dbeta may be null when not wanted; they are f32.
Tensor batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& y, const Tensor& gamma,
                           const BatchNormState& state, bool train, bool relu, Tensor* dgamma, Tensor* dbeta);

// ---- pooling -----------------------------------------------------------------------------------------
struct Pool2dParams {
  int kernel_h = 3, kernel_w = 3, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  bool count_include_pad = true;  // average pool: divide by kh*kw (torchvision) or by the in-bounds count (Keras/TF)
  static Pool2dParams make(int k, int s, int pad, bool count_include_pad = true) {
    return Pool2dParams{k, k, s, s, pad, pad, count_include_pad};
  }
  std::int64_t out_h(std::int64_t h) const { return (h + 2 * pad_h - kernel_h) / stride_h + 1; }
  std::int64_t out_w(std::int64_t w) const { return (w + 2 * pad_w - kernel_w) / stride_w + 1; }
};
// y and the flat in-plane index (h * W + w, i32) of each window's maximum (the first one on ties; a NaN
// wins and the first NaN stays; padding counts as -inf). Without with_indices (inference), indices is left
// undefined and not computed.
Tensor max_pool2d_forward(const Tensor& x, const Pool2dParams& p, Tensor& indices, bool with_indices = true);
Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape, const Pool2dParams& p);
Tensor avg_pool2d_forward(const Tensor& x, const Pool2dParams& p);
Tensor avg_pool2d_backward(const Tensor& dy, const Shape& x_shape, const Pool2dParams& p);
// [N, H, W, C] -> [N, C] mean over H and W (in x's dtype), and its gradient.
Tensor global_avg_pool_forward(const Tensor& x);
Tensor global_avg_pool_backward(const Tensor& dy, const Shape& x_shape);

// ---- concatenation along any axis, and its inverse ------------------------------------------------------
Tensor concat(const std::vector<Tensor>& xs, int axis);
// Pieces of y along `axis` with the given extents (the gradient of concat).
std::vector<Tensor> split(const Tensor& y, int axis, const std::vector<std::int64_t>& sizes);
// Zero padding of an NHWC tensor's H and W, and its inverse (crop).
Tensor pad2d(const Tensor& x, int top, int bottom, int left, int right);
Tensor crop2d(const Tensor& x, int top, int bottom, int left, int right);

// ---- matrix products, bias -------------------------------------------------------------------------------
// c = alpha * op(a) @ op(b) + beta * c for 2-D row-major tensors; op transposes when asked.
void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, float alpha, float beta, Tensor& c);
Tensor matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b);
// y[..., c] += bias[c] in place (bias of any float dtype).
void bias_add_(Tensor& y, const Tensor& bias);
// y = x @ w^T + bias (x [N, in], w [out, in], bias [out] or undefined).
Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& bias);

// ---- element-wise with gradients -----------------------------------------------------------------------
// dx = dy * d op(x) / dx, given x and y = op(x).
Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy);
// y = a * x, a a one-element f32 tensor on x's device (read there: no host sync).
Tensor scale_by(const Tensor& x, const Tensor& a);
// out (shape given) filled with scale * s[0], s a one-element tensor on the same device.
Tensor broadcast_scalar(const Tensor& s, float scale, const Shape& shape, DType dtype);

// ---- dropout (Philox; the mask depends only on (seed, stream, element index)) ------------------------
Tensor dropout_forward(const Tensor& x, float p, std::uint64_t seed, std::uint64_t stream);
Tensor dropout_backward(const Tensor& dy, float p, std::uint64_t seed, std::uint64_t stream);

// ---- losses (f32 results) ---------------------------------------------------------------------------------
struct CrossEntropyState {
  Tensor probs;       // [N, K] f32 softmax
  Tensor normalizer;  // [1] f32: sum of the samples' class weights (N without weights)
};
// Mean softmax cross-entropy of logits [N, K] against integer labels [N] (i32 or i64), with optional
// class weights [K] and label smoothing, exactly as torch.nn.functional.cross_entropy computes it.
Tensor softmax_cross_entropy_forward(const Tensor& logits, const Tensor& labels, const Tensor& class_weights,
                                     float label_smoothing, CrossEntropyState& state);
// d loss / d logits, scaled by the upstream gradient dloss ([1] tensor on the device).
Tensor softmax_cross_entropy_backward(const Tensor& dloss, const Tensor& labels, const Tensor& class_weights,
                                      float label_smoothing, const CrossEntropyState& state, DType logits_dtype);
// Softmax over the last dimension (f32 output).
Tensor softmax(const Tensor& logits);
// Mean binary cross-entropy on logits (stable form) against float targets of the same shape, with an
// optional per-element weight tensor of that shape.
Tensor bce_with_logits_forward(const Tensor& logits, const Tensor& targets, const Tensor& weight);
Tensor bce_with_logits_backward(const Tensor& dloss, const Tensor& logits, const Tensor& targets, const Tensor& weight);
// Mean binary cross-entropy on probabilities (log clamped at -100, as PyTorch does).
Tensor bce_forward(const Tensor& probs, const Tensor& targets);
Tensor bce_backward(const Tensor& dloss, const Tensor& probs, const Tensor& targets);

}  // namespace livernet::kernels
