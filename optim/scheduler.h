// Learning-rate schedules. Each is called once per epoch (step) or per epoch with the monitored
// validation value (ReduceOnPlateau), and sets the optimizer's learning rate. State is a few numbers.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "optim/optimizer.h"

namespace livernet {

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Called at the end of epoch `epoch` (0-based); `metric` is the monitored value (ReduceOnPlateau only).
  virtual void step(int epoch, double metric) = 0;
  virtual std::map<std::string, double> state() const { return {}; }
  virtual void load_state(const std::map<std::string, double>&) {}
};

// lr = base * gamma^floor((epoch + 1) / step_size)
class StepLR final : public Scheduler {
 public:
  StepLR(Optimizer& opt, int step_size, float gamma);
  void step(int epoch, double) override;

 private:
  Optimizer& opt_;
  float base_;
  int step_size_;
  float gamma_;
};

// Linear warm-up from 0 to base over `warmup` epochs, then cosine decay to min_lr at `total` epochs.
class CosineWarmup final : public Scheduler {
 public:
  CosineWarmup(Optimizer& opt, int warmup, int total, float min_lr);
  void step(int epoch, double) override;
  // The learning rate for epoch index e (the one set after step(e - 1)).
  float lr_at(int e) const;

 private:
  Optimizer& opt_;
  float base_;
  int warmup_, total_;
  float min_lr_;
};

// Multiplies the learning rate by `factor` when the monitored value has not improved (by more than a
// relative `threshold`) for `patience` epochs, down to min_lr; mode "min" (loss) or "max" (accuracy, AUC).
class ReduceOnPlateau final : public Scheduler {
 public:
  ReduceOnPlateau(Optimizer& opt, float factor = 0.5f, int patience = 3, float min_lr = 1e-6f, bool maximize = false,
                  double threshold = 1e-4);
  void step(int epoch, double metric) override;
  std::map<std::string, double> state() const override;
  void load_state(const std::map<std::string, double>& s) override;

 private:
  Optimizer& opt_;
  float factor_;
  int patience_;
  float min_lr_;
  bool maximize_;
  double threshold_;
  double best_;
  int bad_epochs_ = 0;
};

}  // namespace livernet
