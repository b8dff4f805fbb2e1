// Per-element optimizer updates shared by the CPU and CUDA kernels. The operation order follows
// torch.optim (1.13, single-tensor path) so that trajectories agree to float rounding.
#pragma once

#include <cmath>

#include "core/macros.h"

namespace livernet::kernels {

struct SgdHyper {
  float lr, momentum, dampening, weight_decay;
  bool nesterov;
  bool first_step;  // the momentum buffer starts as a copy of the first update direction
};

// One SGD step for one element; buf is the momentum buffer (unused when momentum == 0).
LN_HD_INLINE void sgd_step(float& p, float g, float& buf, const SgdHyper& h) {
  float d = g;
  if (h.weight_decay != 0.f) d = d + h.weight_decay * p;
  if (h.momentum != 0.f) {
    buf = h.first_step ? d : buf * h.momentum + (1.f - h.dampening) * d;
    d = h.nesterov ? d + h.momentum * buf : buf;
  }
  p = p + (-h.lr) * d;
}

struct AdamHyper {
  float lr, beta1, beta2, eps, weight_decay;
  bool decoupled;           // AdamW: p *= 1 - lr * wd; Adam: g += wd * p
  float bias_correction1;   // 1 - beta1^t
  float bias_correction2_sqrt;  // sqrt(1 - beta2^t)
};

LN_HD_INLINE void adam_step(float& p, float g, float& m, float& v, const AdamHyper& h) {
  if (h.weight_decay != 0.f) {
    if (h.decoupled) p = p * (1.f - h.lr * h.weight_decay);
    else g = g + h.weight_decay * p;
  }
  m = m * h.beta1 + (1.f - h.beta1) * g;
  v = v * h.beta2 + (1.f - h.beta2) * g * g;
  const float denom = sqrtf(v) / h.bias_correction2_sqrt + h.eps;
  const float step_size = h.lr / h.bias_correction1;
  p = p + (-step_size) * (m / denom);
}

}  // namespace livernet::kernels
