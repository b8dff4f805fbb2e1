// What a model file written by tools/train says about using it, beyond its architecture (which the weight
// file's `model` attribute holds: classes, input size): the preprocessing the network was trained with, the
// positive class and the run it came from. Stored as the root attribute "usage" (JSON) of every best.h5 and
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
};

void write_model_usage(io::H5File& f, const ModelUsage& u);
// The usage a weight file records, or nothing (converted ImageNet weights, files from before 2026-11-30).
// Throws Error naming the file when the attribute is there but damaged.
std::optional<ModelUsage> read_model_usage(const std::string& path);

}  // namespace livernet::train
