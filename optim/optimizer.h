// Optimizers over named f32 parameters: SGD (momentum, Nesterov), Adam, AdamW (decoupled weight decay).
// Weight decay skips biases and normalisation/scale parameters (every tensor with fewer than 2
// dimensions) by default. Each step runs one fused kernel per parameter (kernels/optim_ops.h).
// State (moments, momentum buffers, step count) is exposed by name for checkpoints.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace livernet {

struct NamedParam {
  std::string name;
  Tensor* tensor;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Applies one update to every parameter that has a gradient.
  virtual void step() = 0;
  void zero_grad();
  float lr() const { return lr_; }
  void set_lr(float lr) { lr_ = lr; }
  std::int64_t steps() const { return steps_; }
  virtual const char* name() const = 0;
  // State tensors by "<param name>/<slot>" (e.g. "backbone.fc.weight/exp_avg") plus the step count.
  virtual std::map<std::string, Tensor> state() const = 0;
  virtual void load_state(const std::map<std::string, Tensor>& state, std::int64_t steps) = 0;

 protected:
  Optimizer(std::vector<NamedParam> params, float lr, float weight_decay, bool decay_all);
  // Whether weight decay applies to parameter i.
  bool decays(std::size_t i) const { return decay_[i]; }
  std::vector<NamedParam> params_;
  std::vector<bool> decay_;
  float lr_;
  float weight_decay_;
  std::int64_t steps_ = 0;
};

struct SgdOptions {
  float lr = 0.01f, momentum = 0.f, dampening = 0.f, weight_decay = 0.f;
  bool nesterov = false;
  bool decay_all = false;  // also decay biases / BN parameters
};

class SGD final : public Optimizer {
 public:
  SGD(std::vector<NamedParam> params, const SgdOptions& o);
  void step() override;
  const char* name() const override { return "sgd"; }
  std::map<std::string, Tensor> state() const override;
  void load_state(const std::map<std::string, Tensor>& state, std::int64_t steps) override;

 private:
  SgdOptions o_;
  std::vector<Tensor> buf_;
};

struct AdamOptions {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.f;
  bool decoupled = false;  // true: AdamW
  bool decay_all = false;
};

class Adam final : public Optimizer {
 public:
  Adam(std::vector<NamedParam> params, const AdamOptions& o);
  void step() override;
  const char* name() const override { return o_.decoupled ? "adamw" : "adam"; }
  std::map<std::string, Tensor> state() const override;
  void load_state(const std::map<std::string, Tensor>& state, std::int64_t steps) override;

 private:
  AdamOptions o_;
  std::vector<Tensor> m_, v_;
};

// Global gradient norm over all parameters with a gradient; when it exceeds max_norm the gradients are
// scaled by max_norm / (norm + 1e-6) (as torch.nn.utils.clip_grad_norm_). Returns the norm before
// clipping (NaN/inf when a gradient is not finite; then nothing is scaled).
double clip_grad_norm(const std::vector<NamedParam>& params, double max_norm);
// True when every gradient is finite.
bool grads_finite(const std::vector<NamedParam>& params);

// Dynamic loss scaling for fp16 training: the loss is multiplied by scale() before backward; unscale()
// divides the gradients and reports whether they are finite; update() halves the scale after an
// overflow (and the step is skipped) or doubles it after `growth_interval` clean steps.
class LossScaler {
 public:
  explicit LossScaler(float init_scale = 65536.f, float growth = 2.f, float backoff = 0.5f, int growth_interval = 2000);
  float scale() const { return scale_; }
  bool unscale(const std::vector<NamedParam>& params);
  void update(bool finite);
  void set_state(float scale, int good_steps) {
    scale_ = scale;
    good_ = good_steps;
  }
  int good_steps() const { return good_; }

 private:
  float scale_, growth_, backoff_;
  int interval_, good_ = 0;
};

}  // namespace livernet
