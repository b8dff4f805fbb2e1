#include "optim/optimizer.h"

#include <cmath>

#include "core/autograd.h"
#include "kernels/ops.h"
#include "kernels/optim_ops.h"

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

void Optimizer::zero_grad() {
  for (NamedParam& p : params_) p.tensor->set_grad(Tensor());
}

namespace {
Tensor grad_f32(const Tensor& p) {
  Tensor g = p.grad();
  return g.dtype() == DType::f32 ? g : g.to(DType::f32);
}
}  // namespace

// ---- SGD -------------------------------------------------------------------------------------------

SGD::SGD(std::vector<NamedParam> params, const SgdOptions& o)
    : Optimizer(std::move(params), o.lr, o.weight_decay, o.decay_all), o_(o) {
  LN_CHECK(o.momentum >= 0.f && o.momentum < 1.f, "sgd: momentum must be in [0, 1), got ", o.momentum);
  LN_CHECK(!o.nesterov || (o.momentum > 0.f && o.dampening == 0.f), "sgd: Nesterov needs momentum > 0 and no dampening");
  buf_.resize(params_.size());
}

void SGD::step() {
  NoGradGuard ng;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = *params_[i].tensor;
    if (!p.grad().defined()) continue;
    const Tensor g = grad_f32(p);
    const bool first = o_.momentum != 0.f && !buf_[i].defined();
    if (first) buf_[i] = Tensor::zeros(p.shape(), DType::f32, p.device());
    kernels::SgdHyper h{lr_, o_.momentum, o_.dampening, decays(i) ? weight_decay_ : 0.f, o_.nesterov, first};
    kernels::sgd_update(p, g, buf_[i], h);
  }
  ++steps_;
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
  steps_ = steps;
}

// ---- Adam / AdamW ---------------------------------------------------------------------------------

Adam::Adam(std::vector<NamedParam> params, const AdamOptions& o)
    : Optimizer(std::move(params), o.lr, o.weight_decay, o.decay_all), o_(o) {
  LN_CHECK(o.beta1 >= 0.f && o.beta1 < 1.f && o.beta2 >= 0.f && o.beta2 < 1.f, "adam: betas must be in [0, 1)");
  LN_CHECK(o.eps > 0.f, "adam: eps must be > 0");
  m_.resize(params_.size());
  v_.resize(params_.size());
}

void Adam::step() {
  NoGradGuard ng;
  ++steps_;
  const double t = static_cast<double>(steps_);
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = *params_[i].tensor;
    if (!p.grad().defined()) continue;
    if (!m_[i].defined()) {
      m_[i] = Tensor::zeros(p.shape(), DType::f32, p.device());
      v_[i] = Tensor::zeros(p.shape(), DType::f32, p.device());
    }
    kernels::AdamHyper h{lr_,
                         o_.beta1,
                         o_.beta2,
                         o_.eps,
                         decays(i) ? weight_decay_ : 0.f,
                         o_.decoupled,
                         static_cast<float>(1.0 - std::pow(static_cast<double>(o_.beta1), t)),
                         static_cast<float>(std::sqrt(1.0 - std::pow(static_cast<double>(o_.beta2), t)))};
    kernels::adam_update(p, grad_f32(p), m_[i], v_[i], h);
  }
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
  steps_ = steps;
}

// ---- gradient utilities ---------------------------------------------------------------------------

namespace {
// (sum of squares, any non-finite) over all gradients, summed on the device: one host sync per call.
std::pair<double, bool> total_stats(const std::vector<NamedParam>& params) {
  Tensor acc;
  for (const NamedParam& p : params) {
    const Tensor g = p.tensor->grad();
    if (!g.defined()) continue;
    const Tensor st = kernels::grad_stats(g);
    if (!acc.defined()) acc = st;
    else kernels::binary(kernels::BinaryOp::add, acc, st, acc);
  }
  if (!acc.defined()) return {0.0, false};
  const std::vector<float> v = acc.to_vector<float>();
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
