// Per-element optimizer updates shared by the CPU and CUDA kernels, the per-parameter and the
// multi-tensor ones. The operation order follows torch.optim (1.13, single-tensor path) so that
// trajectories agree to float rounding.
#pragma once

#include <cmath>

#include "core/macros.h"

namespace livernet::kernels {

// Settings shared by every parameter of one SGD step.
struct SgdHyper {
  float lr, momentum, dampening;
  bool nesterov;
};
// Settings of one parameter in that step (biases and BN parameters are not decayed; momentum buffers
// are created lazily, so some parameters can be at their first step while others are not).
struct SgdParamHyper {
  float weight_decay;
  bool first_step;  // the momentum buffer starts as a copy of the first update direction
};

// Each product and sum rounded on its own, on every processor (also the multi-tensor kernels' gradient times
// grad_mul: with grad_mul == 1 the update is then bit-identical to the per-parameter kernel's). nvcc contracts a * b + c into one fused
// multiply-add wherever it sees fit, and where depends on the code around the formula (a vectorised
// loop, a hoisted invariant): the per-parameter and the multi-tensor kernels differed in the last bit
// of Adam's moments on an H200 (2026-11-29) until every rounding was spelled out. The host (ISO C++,
// which GCC compiles with -ffp-contract=off) rounds each operation anyway, so CPU and GPU agree too.
LN_HD_INLINE float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
LN_HD_INLINE float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

// One SGD step for one element; buf is the momentum buffer (unused when momentum == 0).
LN_HD_INLINE void sgd_step(float& p, float g, float& buf, const SgdHyper& h, const SgdParamHyper& ph) {
  float d = g;
  if (ph.weight_decay != 0.f) d = add_rn(d, mul_rn(ph.weight_decay, p));
  if (h.momentum != 0.f) {
    buf = ph.first_step ? d : add_rn(mul_rn(buf, h.momentum), mul_rn(1.f - h.dampening, d));
    d = h.nesterov ? add_rn(d, mul_rn(h.momentum, buf)) : buf;
  }
  p = add_rn(p, mul_rn(-h.lr, d));
}

// Settings shared by every parameter of one Adam step (the weight decay is per parameter).
struct AdamHyper {
  float lr, beta1, beta2, eps;
  bool decoupled;               // AdamW: p *= 1 - lr * wd; Adam: g += wd * p
  float bias_correction1;       // 1 - beta1^t
  float bias_correction2_sqrt;  // sqrt(1 - beta2^t)
};

LN_HD_INLINE void adam_step(float& p, float g, float& m, float& v, const AdamHyper& h, float weight_decay) {
  if (weight_decay != 0.f) {
    if (h.decoupled) p = mul_rn(p, 1.f - mul_rn(h.lr, weight_decay));
    else g = add_rn(g, mul_rn(weight_decay, p));
  }
  m = add_rn(mul_rn(m, h.beta1), mul_rn(1.f - h.beta1, g));
  v = add_rn(mul_rn(v, h.beta2), mul_rn(mul_rn(1.f - h.beta2, g), g));
  // sqrtf and / are correctly rounded on both sides (nvcc's defaults -prec-sqrt=true -prec-div=true).
  const float denom = add_rn(sqrtf(v) / h.bias_correction2_sqrt, h.eps);
  const float step_size = h.lr / h.bias_correction1;
  p = add_rn(p, mul_rn(-step_size, m / denom));
}

}  // namespace livernet::kernels
