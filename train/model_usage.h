// What a model file written by tools/train says about using it, beyond its architecture (which the weight
// file's `model` attribute holds: classes, input size): the preprocessing the network was trained with, the
// positive class, the run it came from and the run's calibration. Stored as the root attribute "usage" (JSON) of every best.h5 and
// checkpoint.h5, so tools/predict needs no preprocessing flags for a trained model.
#pragma once

#include <optional>
#include <string>

#include "data/preprocess.h"
#include "io/hdf5.h"

namespace livernet::train {

struct ModelUsage {
  data::HuWindow window;       // HU window, then scaled to [-1, 1]; images resized to the input size in HU first
  std::string positive_class;  // the class of precision / recall / F1 / AUC
  std::string run;             // the run directory's name
  // Probabilities are softmax(logits / temperature) (train/calibration.h); 1 until the run has fitted one
  // on its out-of-fold predictions (then `calibration` says how).
  double temperature = 1;
  std::string calibration;
  // How the training patches were cut from CT volumes (data::extraction_json), when the training data recorded
  // it (datasets from tools/extract_lesions): tools/predict --ct and the C API cut lesions the same way.
  std::string extraction;
};

// The usage as the JSON a model file stores (also the ONNX export's metadata "livernet.usage"), and back;
// parse throws Error("<what>: damaged 'usage' (...)") for JSON that is not a usage.
std::string model_usage_json(const ModelUsage& u);
ModelUsage parse_model_usage(const std::string& json, const std::string& what);
void write_model_usage(io::H5File& f, const ModelUsage& u);
// Rewrites the usage of the weight file `path` atomically (a copy with the new attribute replaces it).
void rewrite_model_usage(const std::string& path, const ModelUsage& u);
// The usage a weight file records, or nothing (converted ImageNet weights, files from before 2026-11-30).
// Throws Error naming the file when the attribute is there but damaged.
std::optional<ModelUsage> read_model_usage(const std::string& path);

}  // namespace livernet::train
