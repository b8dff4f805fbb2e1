// livernet weight files (HDF5): root attributes format = "livernet-weights", format_version, model
// (the ModelConfig JSON); one float32 dataset per parameter / buffer at the path of its dotted name
// ("backbone/Mixed_5b/branch1x1/conv/weight"). Conv weights are stored OIHW (the engine keeps OHWI),
// linear weights (out, in). Loading checks every name, shape and dtype and names the first mismatch.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "layers/module.h"
#include "models/config.h"
#include "models/inception_v3.h"

namespace livernet::io {

constexpr int kWeightsFormatVersion = 1;
constexpr const char* kWeightsFormat = "livernet-weights";
// A checkpoint is a weight file (same layout, readable by load_weights) with the training state added
// under /optimizer and /trainer.
constexpr const char* kCheckpointFormat = "livernet-checkpoint";
// An ensemble file: several models of one configuration (a run's fold models) used as one, their
// probabilities averaged (train::Classifier). Root attributes format = kEnsembleFormat, format_version,
// model (the members' configuration) and members (their number); member i's tensors are those of a weight
// file under member_<i>/ (1-based).
constexpr const char* kEnsembleFormat = "livernet-ensemble";

// "a.b.c" -> "a/b/c"
std::string dataset_path(const std::string& dotted_name);
// Host-side layout changes of a CPU f32 tensor: out[i_perm...] = in[i...], i.e. out.shape[k] = in.shape[perm[k]].
Tensor permute(const Tensor& t, const std::vector<int>& perm);
// File layout <-> engine layout of a named tensor (conv weights: OIHW <-> OHWI; everything else as is).
Tensor to_file_layout(const Tensor& engine_tensor);
Tensor from_file_layout(const Tensor& file_tensor);

class H5File;
// Writes every parameter and buffer of `model` with the model's configuration, atomically. `extra`, when
// given, adds more to the file before it is committed (checkpoints: format = kCheckpointFormat).
void save_weights(Module& model, const ModelConfig& config, const std::string& path,
                  const std::function<void(H5File&)>& extra = {}, const char* format = kWeightsFormat);

struct LoadOptions {
  // 0: a weight file (or checkpoint); i >= 1: member i of an ensemble file.
  int member = 0;
  // Strict: every model tensor must be in the file and every file tensor in the model.
  bool strict = true;
  // When non-empty, only tensors whose dotted names start with one of these prefixes are loaded; the
  // rest keep their current values and are reported as skipped (e.g. {"backbone."} to fine-tune).
  std::vector<std::string> only_prefixes;
  // Strict loading still lets model tensors whose dotted names contain one of these be absent from the
  // file (they keep their values and are reported as missing), e.g. {".shortcut."}: the residual
  // shortcuts, which ImageNet InceptionV3 weights do not have.
  std::vector<std::string> may_be_missing;
};

struct LoadReport {
  std::vector<std::string> loaded;      // dotted names
  std::vector<std::string> missing;     // in the model, not in the file (non-strict)
  std::vector<std::string> unexpected;  // in the file, not in the model (non-strict)
  std::vector<std::string> skipped;     // excluded by only_prefixes
  // Multi-line, human-readable.
  std::string summary() const;
};

// Loads into an existing model. Throws Error (naming the file and the first problem) on any mismatch.
LoadReport load_weights(Module& model, const std::string& path, const LoadOptions& options = {});
// The configuration stored in a weight file (validates the format and version first).
ModelConfig read_model_config(const std::string& path);
// Builds the model a weight file describes and loads it strictly.
std::unique_ptr<LesionClassifier> load_model(const std::string& path);

// The number of members of an ensemble file, 0 for a weight file or checkpoint (after checking it is one of
// them: anything else throws Error naming the file).
int ensemble_members(const std::string& path);
// Writes `members` (at least two, of one configuration) as an ensemble file, atomically; `extra` adds more
// (train::write_model_usage) before it is committed.
void save_ensemble(const std::vector<LesionClassifier*>& members, const std::string& path,
                   const std::function<void(H5File&)>& extra = {});
// The members of an ensemble file, each loaded strictly.
std::vector<std::unique_ptr<LesionClassifier>> load_ensemble(const std::string& path);

}  // namespace livernet::io
