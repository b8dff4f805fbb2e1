// Batch normalisation (raw, no autograd): per channel = the last dimension, statistics in f32, ReLU
// optionally fused. Argument checks here, then LN_DISPATCH to kernels/cpu/norm.cpp or kernels/cuda/norm.cu.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/math.h"

namespace livernet::kernels {

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

}  // namespace livernet::kernels
