// A trained model ready to classify CT patches as it was trained: what tools/predict, the C API
// (capi/livernet.h) and any other front end use, so they cannot drift apart. The model file may be an
// ensemble (models/weights.h: a run's fold models as one), whose probabilities are the mean of its members'. From the
// model file it takes the architecture, classes and input size (`model`), and the HU window and temperature (`usage`,
// when tools/train wrote it); a caller may override the window and switch the calibration off.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/lesions.h"
#include "data/preprocess.h"
#include "models/inception_v3.h"
#include "train/model_usage.h"

namespace livernet::train {

class Classifier {
 public:
  // Loads `path` (a model or an ensemble file) onto `device` in eval mode; throws Error naming the file when it
  // cannot be used (no classifier head).
  Classifier(const std::string& path, Device device);
  // The number of models averaged (1 unless an ensemble file).
  int members() const { return static_cast<int>(models_.size()); }

  const ModelConfig& config() const;
  const std::string& path() const { return path_; }
  const std::optional<ModelUsage>& usage() const { return usage_; }
  // The class names, "class<k>" where the file has none.
  std::vector<std::string> class_names() const;

  data::HuWindow window;    // the file's (else the default 40 / 400)
  // How the training patches were cut from CT volumes, when the model file records it (else extract_lesions'
  // defaults, and `extraction_recorded` false): what classify_ct_lesions' callers start from.
  data::ExtractOptions extraction;
  bool extraction_recorded = false;
  double temperature = 1;   // the file's (else 1): probabilities are softmax(logits / temperature)

  // Model input from images [N, H, W, C]: resized to the input size when `resize` (bilinear, in HU), then
  // when `hu` windowed and scaled to [-1, 1] (else taken as already scaled), as training prepared its patches.
  Tensor prepare(const Tensor& images, bool hu, bool resize) const;
  // Logits, or softmax(logits / temperature), [N, K] on the host, `batch` images per forward pass. An
  // ensemble gives the mean of its members' probabilities, or of their logits.
  Tensor run(const Tensor& input, bool probabilities, int batch = 16);
  // prepare + run for square patches in HU: [N, H, W] or [N, H, W, 1]; probabilities [N, K].
  Tensor classify_hu(const Tensor& hu, int batch = 16);

 private:
  std::string path_;
  Device device_;
  std::vector<std::unique_ptr<LesionClassifier>> models_;
  std::optional<ModelUsage> usage_;
};

// One lesion of a CT volume, classified: where it is and what the model says.
struct LesionPrediction {
  int lesion = 0;            // 1, 2, ... in the order found
  io::Vec3 voxel{};          // centroid in the CT's own (not canonical) voxel indices, continuous
  io::Vec3 lps_mm{};         // centroid in patient coordinates (DICOM LPS)
  double volume_ml = 0, max_diameter_mm = 0, patch_spacing_mm = 0;
  std::vector<float> probs;  // one per class
};

struct CtLesions {
  std::vector<LesionPrediction> lesions;
  std::vector<std::string> notes;  // worth printing (orientation, oblique volume)
  std::int64_t below_min_volume = 0;
};

// The lesions of `scan` (its structures that `lesions` matches, united) cut out as tools/extract_lesions
// cuts training patches (options `o`) and classified by `clf`: what tools/predict --ct and the C API's
// livernet_classify_volume do.
CtLesions classify_ct_lesions(Classifier& clf, const data::PatientScan& scan, const data::ClassMap& lesions,
                              const data::ExtractOptions& o, int batch = 16);

}  // namespace livernet::train
