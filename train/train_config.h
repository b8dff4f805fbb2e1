// The training configuration: a YAML file (configs/*.yaml) with sections data / model / train / cv /
// runtime, plus command-line overrides. Unknown keys are rejected with a "did you mean", wrong types and
// out-of-range values with the key's name. The resolved configuration is saved with every run.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/choices.h"
#include "data/augment.h"
#include "models/config.h"

namespace livernet::train {

// The settings that name one of a few choices, parsed once into these enums (core/choices.h): the
// names are what config.yaml holds and what messages print.
enum class Balance { oversample, class_weight, none };
enum class OptimizerKind { sgd, adam, adamw };
enum class Schedule { plateau, cosine, step, none };
enum class Monitor { val_loss, val_auc, val_accuracy };
enum class NonFinite { skip, stop };
enum class Precision { automatic, f32, bf16, f16 };
enum class Parallel { folds, data };

}  // namespace livernet::train

namespace livernet {

template <>
struct Choices<train::Balance> {
  static constexpr std::array<const char*, 3> names{"oversample", "class_weight", "none"};
};
template <>
struct Choices<train::OptimizerKind> {
  static constexpr std::array<const char*, 3> names{"sgd", "adam", "adamw"};
};
template <>
struct Choices<train::Schedule> {
  static constexpr std::array<const char*, 4> names{"plateau", "cosine", "step", "none"};
};
template <>
struct Choices<train::Monitor> {
  static constexpr std::array<const char*, 3> names{"val_loss", "val_auc", "val_accuracy"};
};
template <>
struct Choices<train::NonFinite> {
  static constexpr std::array<const char*, 2> names{"skip", "stop"};
};
template <>
struct Choices<train::Parallel> {
  static constexpr std::array<const char*, 2> names{"folds", "data"};
};
template <>
struct Choices<train::Precision> {
  static constexpr std::array<const char*, 4> names{"auto", "f32", "bf16", "f16"};
};

}  // namespace livernet

namespace livernet::train {

struct TrainConfig {
  // data
  std::string data;                 // dataset .h5 or manifest .csv
  data::HuWindow window;
  data::AugmentConfig augment;
  Balance balance = Balance::oversample;
  std::string positive_class;          // for binary metrics; default: "metastasis" if present, else class 1
  // model
  ModelConfig model;
  std::string weights;                 // ImageNet weights (tools/convert_weights), empty = random init
  int freeze_backbone_epochs = 0;      // train only the head (and shortcut scales) for the first epochs
  // train
  OptimizerKind optimizer = OptimizerKind::adam;
  float lr = 1e-3f;
  float momentum = 0.9f;
  bool nesterov = false;
  float weight_decay = 0.f;
  int batch_size = 32;
  int epochs = 100;
  Schedule schedule = Schedule::plateau;
  float plateau_factor = 0.5f;
  int plateau_patience = 3;
  float min_lr = 1e-6f;
  int warmup_epochs = 0;
  int step_size = 30;
  float step_gamma = 0.1f;
  int early_stopping_patience = 10;    // 0 = off
  Monitor monitor = Monitor::val_loss;
  float label_smoothing = 0.f;
  float clip_grad_norm = 0.f;          // 0 = off
  NonFinite nonfinite = NonFinite::skip;  // skip (the step; lower the fp16 loss scale) | stop
  // Before each validation, recompute the batch-norm running statistics with the current weights over up
  // to this many training samples ("precise BN"; 0 = off): with small datasets the running averages lag
  // the fast-changing weights and evaluation suffers.
  int precise_bn_samples = 1024;
  // cv
  int folds = 5;
  float val_fraction = 0.2f;
  std::uint64_t seed = 42;
  // After the cross-validation, train one model on every patient for the median of the folds' best epochs
  // (RUN/final/model.h5): the model to deploy, its expected performance the cross-validation's.
  bool final_model = false;
  // Repeat the whole cross-validation with seeds seed, seed + 1, ... (RUN/repeat_<r>): the spread of the metrics
  // over splits and initialisations.
  int repeats = 1;
  // runtime
  std::string device = "auto";
  Precision precision = Precision::automatic;  // auto: bf16 on a GPU, f32 on the CPU
  int loader_threads = 0;              // 0: auto (1 on the CPU, where compute takes the cores; up to 8 for a GPU)
  bool deterministic = false;
  // A job of several processes (mpirun, srun; docs/distributed.md): folds = each process trains whole folds;
  // data = every process trains every fold together, each on its share of every batch (data-parallel).
  Parallel parallel = Parallel::folds;
  bool sync_batch_norm = true;  // data-parallel: batch-norm statistics over the whole batch, not each share

  // Throws Error naming `where` (the YAML file, or "config") and the key for out-of-range values.
  void validate(const std::string& where = "config") const;
  std::string to_yaml() const;
};

// Parses YAML text; `source` names the file in error messages.
TrainConfig parse_train_config(const std::string& yaml_text, const std::string& source);
TrainConfig load_train_config(const std::string& path);
// Every key a configuration file can set, as "section.key" ("data.augment.flips"), in file order: what
// the documentation's option tables are checked against.
std::vector<std::string> config_keys();

// Levenshtein distance (for "did you mean").
int edit_distance(const std::string& a, const std::string& b);

}  // namespace livernet::train
