// Raw optimizer kernels (fused, in place): one pass over a parameter, its gradient and its state.
#pragma once

#include "core/tensor.h"
#include "kernels/optim_math.h"

namespace livernet::kernels {

void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, const SgdHyper& h);
void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamHyper& h);
// [sum of squares, 1 if any value is NaN/inf] of a float tensor, as a [2] f32 tensor on its device.
Tensor grad_stats(const Tensor& x);

}  // namespace livernet::kernels
