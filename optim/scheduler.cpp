#include "optim/scheduler.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace livernet {

StepLR::StepLR(Optimizer& opt, int step_size, float gamma) : opt_(opt), base_(opt.lr()), step_size_(step_size), gamma_(gamma) {
  LN_CHECK(step_size > 0 && gamma > 0.f, "step schedule: step_size must be > 0 and gamma > 0");
}

void StepLR::step(int epoch, double) {
  opt_.set_lr(base_ * std::pow(gamma_, static_cast<float>((epoch + 1) / step_size_)));
}

CosineWarmup::CosineWarmup(Optimizer& opt, int warmup, int total, float min_lr)
    : opt_(opt), base_(opt.lr()), warmup_(warmup), total_(total), min_lr_(min_lr) {
  LN_CHECK(warmup >= 0 && total > warmup, "cosine schedule: need 0 <= warmup < total epochs");
  opt_.set_lr(lr_at(0));
}

float CosineWarmup::lr_at(int e) const {
  if (e < warmup_) return base_ * static_cast<float>(e + 1) / static_cast<float>(warmup_ + 1);
  const double t = std::min(1.0, static_cast<double>(e - warmup_) / std::max(1, total_ - warmup_));
  return static_cast<float>(min_lr_ + 0.5 * (base_ - min_lr_) * (1.0 + std::cos(M_PI * t)));
}

void CosineWarmup::step(int epoch, double) { opt_.set_lr(lr_at(epoch + 1)); }

ReduceOnPlateau::ReduceOnPlateau(Optimizer& opt, float factor, int patience, float min_lr, bool maximize,
                                 double threshold)
    : opt_(opt), factor_(factor), patience_(patience), min_lr_(min_lr), maximize_(maximize), threshold_(threshold),
      best_(maximize ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity()) {
  LN_CHECK(factor > 0.f && factor < 1.f, "plateau schedule: factor must be in (0, 1), got ", factor);
  LN_CHECK(patience >= 0, "plateau schedule: patience must be >= 0");
}

void ReduceOnPlateau::step(int, double metric) {
  // PyTorch's threshold mode "rel": an improvement must beat best by a relative margin.
  const bool better = maximize_ ? metric > best_ * (1 + threshold_) : metric < best_ * (1 - threshold_);
  if (better) {
    best_ = metric;
    bad_epochs_ = 0;
    return;
  }
  if (++bad_epochs_ > patience_) {
    opt_.set_lr(std::max(min_lr_, opt_.lr() * factor_));
    bad_epochs_ = 0;
  }
}

std::map<std::string, double> ReduceOnPlateau::state() const { return {{"best", best_}, {"bad_epochs", bad_epochs_}}; }

void ReduceOnPlateau::load_state(const std::map<std::string, double>& s) {
  if (auto it = s.find("best"); it != s.end()) best_ = it->second;
  if (auto it = s.find("bad_epochs"); it != s.end()) bad_epochs_ = static_cast<int>(it->second);
}

}  // namespace livernet
