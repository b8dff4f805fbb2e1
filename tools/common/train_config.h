// The training configuration: a YAML file (configs/*.yaml) with sections data / model / train / cv /
// runtime, plus command-line overrides. Unknown keys are rejected with a "did you mean", wrong types and
// out-of-range values with the key's name. The resolved configuration is saved with every run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/augment.h"
#include "models/config.h"

namespace livernet::tools {

struct TrainConfig {
  // data
  std::string data;                 // dataset .h5 or manifest .csv
  io::HuWindow window;
  io::AugmentConfig augment;
  std::string balance = "oversample";  // oversample | class_weight | none
  std::string positive_class;          // for binary metrics; default: "metastasis" if present, else class 1
  // model
  ModelConfig model;
  std::string weights;                 // ImageNet weights (tools/convert_weights), empty = random init
  int freeze_backbone_epochs = 0;      // train only the head (and shortcut scales) for the first epochs
  // train
  std::string optimizer = "adam";      // sgd | adam | adamw
  float lr = 1e-3f;
  float momentum = 0.9f;
  bool nesterov = false;
  float weight_decay = 0.f;
  int batch_size = 32;
  int epochs = 100;
  std::string schedule = "plateau";    // plateau | cosine | step | none
  float plateau_factor = 0.5f;
  int plateau_patience = 3;
  float min_lr = 1e-6f;
  int warmup_epochs = 0;
  int step_size = 30;
  float step_gamma = 0.1f;
  int early_stopping_patience = 10;    // 0 = off
  std::string monitor = "val_loss";    // val_loss | val_auc | val_accuracy
  float label_smoothing = 0.f;
  float clip_grad_norm = 0.f;          // 0 = off
  std::string nonfinite = "skip";      // skip (the step; lower the fp16 loss scale) | stop
  // Before each validation, recompute the batch-norm running statistics with the current weights over up
  // to this many training samples ("precise BN"; 0 = off): with small datasets the running averages lag
  // the fast-changing weights and evaluation suffers.
  int precise_bn_samples = 1024;
  // cv
  int folds = 5;
  float val_fraction = 0.2f;
  std::uint64_t seed = 42;
  // runtime
  std::string device = "auto";
  std::string precision = "auto";      // auto (bf16 on GPU, f32 on CPU) | f32 | bf16 | f16
  int loader_threads = 0;              // 0: auto (1 on the CPU, where compute takes the cores; up to 8 for a GPU)
  bool deterministic = false;

  // Throws Error naming `where` (the YAML file, or "config") and the key for out-of-range values.
  void validate(const std::string& where = "config") const;
  std::string to_yaml() const;
};

// Parses YAML text; `source` names the file in error messages.
TrainConfig parse_train_config(const std::string& yaml_text, const std::string& source);
TrainConfig load_train_config(const std::string& path);

// Levenshtein distance (for "did you mean").
int edit_distance(const std::string& a, const std::string& b);

}  // namespace livernet::tools
