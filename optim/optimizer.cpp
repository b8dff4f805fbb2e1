#include "optim/optimizer.h"

#include <cmath>

#include "autograd/autograd.h"
#include "kernels/elementwise.h"
#include "kernels/optim.h"
#include "kernels/tensor_ops.h"

namespace livernet {

Optimizer::Optimizer(std::vector<NamedParam> params, float lr, float weight_decay, bool decay_all)
    : params_(std::move(params)), lr_(lr), weight_decay_(weight_decay) {
  LN_CHECK(lr >= 0.f && std::isfinite(lr), "optimizer: learning rate must be >= 0, got ", lr);
  LN_CHECK(weight_decay >= 0.f, "optimizer: weight decay must be >= 0, got ", weight_decay);
  for (const NamedParam& p : params_) {
    LN_CHECK(p.tensor && p.tensor->defined(), "optimizer: parameter '", p.name, "' is undefined");
    LN_CHECK(p.tensor->dtype() == DType::f32, "optimizer: parameter '", p.name, "' must be f32 (master weights)");
    decay_.push_back(decay_all || p.tensor->dim() >= 2);
  }
}

void Optimizer::step(const Tensor& found_inf, const Tensor& grad_mul) {
  NoGradGuard ng;
  std::vector<std::size_t> active;
  for (std::size_t i = 0; i < params_.size(); ++i)
    if (params_[i].tensor->grad().defined()) active.push_back(i);
  created_.clear();
  rewindable_ = false;
  ++steps_;
  update(active, found_inf, grad_mul);
  rewindable_ = true;
}

void Optimizer::rewind_step() {
  LN_CHECK(rewindable_, name(), ": rewind_step() undoes one step(); there is no step to undo (none since the start, "
           "the last load_state() or the last rewind)");
  for (std::size_t i : created_) drop_state(i);
  created_.clear();
  --steps_;
  rewindable_ = false;
}

void Optimizer::set_steps(std::int64_t steps) {
  steps_ = steps;
  created_.clear();
  rewindable_ = false;
}

void Optimizer::zero_grad() {
  for (NamedParam& p : params_) p.tensor->set_grad(Tensor());
}

namespace {
Tensor grad_f32(const Tensor& p) {
  Tensor g = p.grad();
  return to_dtype(g, DType::f32);  // g itself when already f32
}
}  // namespace

// ---- SGD -------------------------------------------------------------------------------------------

SGD::SGD(std::vector<NamedParam> params, const SgdOptions& o)
    : Optimizer(std::move(params), o.lr, o.weight_decay, o.decay_all), o_(o) {
  LN_CHECK(o.momentum >= 0.f && o.momentum < 1.f, "sgd: momentum must be in [0, 1), got ", o.momentum);
  LN_CHECK(!o.nesterov || (o.momentum > 0.f && o.dampening == 0.f), "sgd: Nesterov needs momentum > 0 and no dampening");
  buf_.resize(params_.size());
}

void SGD::update(const std::vector<std::size_t>& active, const Tensor& found_inf, const Tensor& grad_mul) {
  std::vector<Tensor> params, grads, bufs;
  std::vector<kernels::SgdParamHyper> per_param;
  for (std::size_t i : active) {
    const Tensor& p = *params_[i].tensor;
    const bool first = o_.momentum != 0.f && !buf_[i].defined();
    if (first) {
      buf_[i] = zeros(p.shape(), DType::f32, p.device());
      created_state(i);
    }
    params.push_back(p);
    grads.push_back(grad_f32(p));
    bufs.push_back(buf_[i]);
    per_param.push_back({weight_decay(i), first});
  }
  kernels::sgd_update_multi(params, grads, bufs, per_param, {lr_, o_.momentum, o_.dampening, o_.nesterov}, found_inf,
                            grad_mul);
}

std::map<std::string, Tensor> SGD::state() const {
  std::map<std::string, Tensor> s;
  for (std::size_t i = 0; i < params_.size(); ++i)
    if (buf_[i].defined()) s[params_[i].name + "/momentum_buffer"] = buf_[i];
  return s;
}

void SGD::load_state(const std::map<std::string, Tensor>& s, std::int64_t steps) {
  for (std::size_t i = 0; i < params_.size(); ++i) {
    auto it = s.find(params_[i].name + "/momentum_buffer");
    buf_[i] = it == s.end() ? Tensor() : it->second.to(params_[i].tensor->device()).clone();
    if (buf_[i].defined()) check_same_shape("sgd state", *params_[i].tensor, buf_[i]);
  }
  set_steps(steps);
}

// ---- Adam / AdamW ---------------------------------------------------------------------------------

Adam::Adam(std::vector<NamedParam> params, const AdamOptions& o)
    : Optimizer(std::move(params), o.lr, o.weight_decay, o.decay_all), o_(o) {
  LN_CHECK(o.beta1 >= 0.f && o.beta1 < 1.f && o.beta2 >= 0.f && o.beta2 < 1.f, "adam: betas must be in [0, 1)");
  LN_CHECK(o.eps > 0.f, "adam: eps must be > 0");
  m_.resize(params_.size());
  v_.resize(params_.size());
}

void Adam::update(const std::vector<std::size_t>& active, const Tensor& found_inf, const Tensor& grad_mul) {
  std::vector<Tensor> params, grads, m, v;
  std::vector<float> weight_decays;
  for (std::size_t i : active) {
    const Tensor& p = *params_[i].tensor;
    if (!m_[i].defined()) {
      m_[i] = zeros(p.shape(), DType::f32, p.device());
      v_[i] = zeros(p.shape(), DType::f32, p.device());
      created_state(i);
    }
    params.push_back(p);
    grads.push_back(grad_f32(p));
    m.push_back(m_[i]);
    v.push_back(v_[i]);
    weight_decays.push_back(weight_decay(i));
  }
  const double t = static_cast<double>(steps_);
  const kernels::AdamHyper h{lr_,
                             o_.beta1,
                             o_.beta2,
                             o_.eps,
                             o_.decoupled,
                             static_cast<float>(1.0 - std::pow(static_cast<double>(o_.beta1), t)),
                             static_cast<float>(std::sqrt(1.0 - std::pow(static_cast<double>(o_.beta2), t)))};
  kernels::adam_update_multi(params, grads, m, v, weight_decays, h, found_inf, grad_mul);
}

std::map<std::string, Tensor> Adam::state() const {
  std::map<std::string, Tensor> s;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!m_[i].defined()) continue;
    s[params_[i].name + "/exp_avg"] = m_[i];
    s[params_[i].name + "/exp_avg_sq"] = v_[i];
  }
  return s;
}

void Adam::load_state(const std::map<std::string, Tensor>& s, std::int64_t steps) {
  for (std::size_t i = 0; i < params_.size(); ++i) {
    auto a = s.find(params_[i].name + "/exp_avg"), b = s.find(params_[i].name + "/exp_avg_sq");
    if (a == s.end() || b == s.end()) {
      m_[i] = v_[i] = Tensor();
      continue;
    }
    m_[i] = a->second.to(params_[i].tensor->device()).clone();
    v_[i] = b->second.to(params_[i].tensor->device()).clone();
    check_same_shape("adam state", *params_[i].tensor, m_[i]);
    check_same_shape("adam state", *params_[i].tensor, v_[i]);
  }
  set_steps(steps);
}

// ---- gradient utilities ---------------------------------------------------------------------------

Tensor grad_stats_device(const std::vector<NamedParam>& params) {
  std::vector<Tensor> grads;
  for (const NamedParam& p : params) {
    Tensor g = p.tensor->grad();
    if (g.defined()) grads.push_back(std::move(g));
  }
  Device device = Device::cpu();
  if (!grads.empty()) device = grads[0].device();
  else if (!params.empty()) device = params[0].tensor->device();
  Tensor out = Tensor::empty(Shape{2}, DType::f32, device);
  kernels::grad_stats_multi(grads, out);
  return out;
}

namespace {
// (sum of squares, any non-finite) over all gradients: one host read per call.
std::pair<double, bool> total_stats(const std::vector<NamedParam>& params) {
  const std::vector<float> v = grad_stats_device(params).to_vector<float>();
  return {v[0], v[1] != 0.f || !std::isfinite(v[0])};
}
}  // namespace

double clip_grad_norm(const std::vector<NamedParam>& params, double max_norm) {
  LN_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be positive");
  const auto [sq, bad] = total_stats(params);
  if (bad) return std::nan("");
  const double norm = std::sqrt(sq);
  if (norm > max_norm) {
    NoGradGuard ng;
    const float factor = static_cast<float>(max_norm / (norm + 1e-6));
    for (const NamedParam& p : params) {
      Tensor g = p.tensor->grad();
      if (g.defined()) kernels::axpby(0.f, g, factor, g);
    }
  }
  return norm;
}

bool grads_finite(const std::vector<NamedParam>& params) { return !total_stats(params).second; }

LossScaler::LossScaler(float init_scale, float growth, float backoff, int growth_interval)
    : scale_(init_scale), growth_(growth), backoff_(backoff), interval_(growth_interval) {
  LN_CHECK(init_scale > 0 && growth > 1 && backoff > 0 && backoff < 1 && growth_interval > 0, "loss scaler: bad settings");
}

bool LossScaler::unscale(const std::vector<NamedParam>& params) {
  NoGradGuard ng;
  for (const NamedParam& p : params) {
    Tensor g = p.tensor->grad();
    if (g.defined()) kernels::axpby(0.f, g, 1.f / scale_, g);
  }
  return grads_finite(params);
}

void LossScaler::update(bool finite) {
  if (!finite) {
    scale_ = std::max(scale_ * backoff_, 1.f);
    good_ = 0;
  } else if (++good_ >= interval_) {
    scale_ *= growth_;
    good_ = 0;
  }
}

}  // namespace livernet
