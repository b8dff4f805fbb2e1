// Raw optimizer kernels (fused, in place): one pass over a parameter, its gradient and its state; and
// the multi-tensor forms that optim/ uses, which update a whole list of parameters in a few launches.
#pragma once

#include <vector>

#include "core/tensor.h"
#include "kernels/optim_math.h"

namespace livernet::kernels {

void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, const SgdHyper& h, const SgdParamHyper& ph);
void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamHyper& h, float weight_decay);

// Multi-tensor updates: every element gets exactly the arithmetic of sgd_update / adam_update
// (sgd_step / adam_step), so the results are bit-identical to one per-parameter call each. Entry i of
// every list belongs to parameter i; all tensors f32 on one device, parameters and state updated in
// place; momentum_bufs[i] may be undefined when h.momentum == 0. On CUDA the lists travel in the
// launches' parameter space: no host-to-device copy and no allocation, so the launches can be
// captured in a CUDA graph.
//   found_inf: undefined, or a one-element f32 tensor on the parameters' device; when it holds a
//              non-zero value nothing is written (a step skipped without a host read, as PyTorch's
//              fused optimizers do). The caller's own bookkeeping (step counts, lazily created state)
//              cannot see that: see Optimizer::rewind_step().
//   grad_mul:  undefined (= 1), or a one-element f32 tensor on that device; every gradient is
//              multiplied by it before use (gradient clipping or unscaling without a separate pass).
void sgd_update_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_bufs, const std::vector<SgdParamHyper>& per_param,
                      const SgdHyper& h, const Tensor& found_inf = {}, const Tensor& grad_mul = {});
void adam_update_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& m,
                       const std::vector<Tensor>& v, const std::vector<float>& weight_decays, const AdamHyper& h,
                       const Tensor& found_inf = {}, const Tensor& grad_mul = {});

// [sum of squares, 1 if any value is NaN/inf] of a float tensor, as a [2] f32 tensor on its device.
Tensor grad_stats(const Tensor& x);
// The same over a list of float tensors (f32, bf16, f16, mixed), written to `out`, a [2] f32 tensor on
// their device. On CUDA: per-block partial sums (f32; one launch per table of tensors, as for the
// updates) and one final sum, in a fixed order without float atomics (the same value on every run).
// An empty list gives [0, 0].
void grad_stats_multi(const std::vector<Tensor>& grads, Tensor& out);

}  // namespace livernet::kernels
