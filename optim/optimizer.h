// Optimizers over named f32 parameters: SGD (momentum, Nesterov), Adam, AdamW (decoupled weight decay).
// Weight decay skips biases and normalisation/scale parameters (every tensor with fewer than 2
// dimensions) by default. A step updates all parameters with multi-tensor kernels
// (kernels/optim.h): a few launches for the whole model, not one per parameter.
// State (moments, momentum buffers, step count) is exposed by name for checkpoints.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace livernet {

using NamedParam = NamedTensor;  // the same type as Module::Named: model.named_parameters() goes in as it is

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Applies one update to every parameter that has a gradient. Both arguments are optional one-element
  // f32 tensors on the parameters' device, read there (no host sync):
  //   found_inf: when it holds a non-zero value, parameters and state are left untouched. The step
  //              still counts on the host, which has not seen the value: once it is known to have
  //              been non-zero (e.g. read together with the loss), rewind_step() undoes that.
  //   grad_mul:  gradients are multiplied by it before use (clipping or unscaling folded in).
  void step(const Tensor& found_inf = {}, const Tensor& grad_mul = {});
  // Undoes the host-side bookkeeping of the last step(), for a step the device skipped (found_inf):
  // the step count goes back and state created lazily by that step is dropped, so the next step
  // proceeds exactly as if the skipped one had never been called. Once per step().
  void rewind_step();
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
  // One update of the parameters params_[i], i in `active` (those with a gradient, in order), with
  // step()'s arguments; steps() already counts it.
  virtual void update(const std::vector<std::size_t>& active, const Tensor& found_inf, const Tensor& grad_mul) = 0;
  // Forgets the state of parameter i (rewind_step(): state created by the rewound step).
  virtual void drop_state(std::size_t i) = 0;
  // update() reports each parameter whose state it creates.
  void created_state(std::size_t i) { created_.push_back(i); }
  // load_state() sets the step count through this (a loaded state cannot be rewound).
  void set_steps(std::int64_t steps);
  // Whether weight decay applies to parameter i.
  bool decays(std::size_t i) const { return decay_[i]; }
  float weight_decay(std::size_t i) const { return decays(i) ? weight_decay_ : 0.f; }
  std::vector<NamedParam> params_;
  std::vector<bool> decay_;
  float lr_;
  float weight_decay_;
  std::int64_t steps_ = 0;

 private:
  std::vector<std::size_t> created_;  // by the last step
  bool rewindable_ = false;
};

struct SgdOptions {
  float lr = 0.01f, momentum = 0.f, dampening = 0.f, weight_decay = 0.f;
  bool nesterov = false;
  bool decay_all = false;  // also decay biases / BN parameters
};

class SGD final : public Optimizer {
 public:
  SGD(std::vector<NamedParam> params, const SgdOptions& o);
  const char* name() const override { return "sgd"; }
  std::map<std::string, Tensor> state() const override;
  void load_state(const std::map<std::string, Tensor>& state, std::int64_t steps) override;

 private:
  void update(const std::vector<std::size_t>& active, const Tensor& found_inf, const Tensor& grad_mul) override;
  void drop_state(std::size_t i) override { buf_[i] = Tensor(); }
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
  const char* name() const override { return o_.decoupled ? "adamw" : "adam"; }
  std::map<std::string, Tensor> state() const override;
  void load_state(const std::map<std::string, Tensor>& state, std::int64_t steps) override;

 private:
  void update(const std::vector<std::size_t>& active, const Tensor& found_inf, const Tensor& grad_mul) override;
  void drop_state(std::size_t i) override { m_[i] = v_[i] = Tensor(); }
  AdamOptions o_;
  std::vector<Tensor> m_, v_;
};

// Global gradient norm over all parameters with a gradient; when it exceeds max_norm the gradients are
// scaled by max_norm / (norm + 1e-6) (as torch.nn.utils.clip_grad_norm_). Returns the norm before
// clipping (NaN/inf when a gradient is not finite; then nothing is scaled).
double clip_grad_norm(const std::vector<NamedParam>& params, double max_norm);
// True when every gradient is finite.
bool grads_finite(const std::vector<NamedParam>& params);
// [sum of squares, 1 if any gradient value is NaN/inf else 0] over all gradients, as a [2] f32 tensor on
// the parameters' device, not read back (a trainer can fold it into its one host read per step, e.g.
// with the loss). The sum is the same on every run. [0, 0] when no parameter has a gradient.
Tensor grad_stats_device(const std::vector<NamedParam>& params);

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
