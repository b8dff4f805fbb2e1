// Losses and softmax (raw, no autograd; f32 results): softmax cross-entropy exactly as
// torch.nn.functional.cross_entropy, binary cross-entropy on logits and on probabilities. Argument checks
// here, then LN_DISPATCH to kernels/cpu/loss.cpp or kernels/cuda/loss.cu.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/math.h"

namespace livernet::kernels {

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
