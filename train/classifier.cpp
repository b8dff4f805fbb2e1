#include "train/classifier.h"

#include <algorithm>

#include "autograd/autograd.h"
#include "kernels/nn.h"
#include "kernels/tensor_ops.h"
#include "models/weights.h"

namespace livernet::train {

Classifier::Classifier(const std::string& path, Device device) : path_(path), device_(device) {
  if (io::ensemble_members(path) > 0)
    models_ = io::load_ensemble(path);
  else
    models_.push_back(io::load_model(path));
  LN_CHECK(config().num_classes > 0, path, ": the model has no classifier (a backbone-only file)");
  usage_ = read_model_usage(path);
  if (usage_) {
    window = usage_->window;
    temperature = usage_->temperature;
    if (!usage_->extraction.empty()) {
      extraction = data::parse_extraction(usage_->extraction, path);
      extraction_recorded = true;
    }
  }
  for (auto& m : models_) {
    m->to(device);
    m->eval();
  }
}

const ModelConfig& Classifier::config() const { return models_.front()->config(); }

std::vector<std::string> Classifier::class_names() const {
  const ModelConfig& c = config();
  std::vector<std::string> out;
  for (int k = 0; k < c.num_classes; ++k)
    out.push_back(k < static_cast<int>(c.class_names.size()) ? c.class_names[k] : str_cat("class", k));
  return out;
}

Tensor Classifier::prepare(const Tensor& images, bool hu, bool resize) const {
  Tensor x = images;
  const std::int64_t s = config().input_size;
  // Resized in HU, then windowed: the order of training's data::make_input.
  if (resize && s > 0 && (x.size(1) != s || x.size(2) != s)) x = data::resize_bilinear(x, s, s);
  if (hu) x = data::apply_window(x, window);
  return x;
}

Tensor Classifier::run(const Tensor& input, bool probabilities, int batch) {
  LN_CHECK(input.dim() == 4, "a model input must be [N, H, W, C], got ", input.shape().str());
  LN_CHECK(batch >= 1, "batch must be at least 1");
  LN_CHECK(temperature > 0, "temperature must be positive, got ", temperature);
  NoGradGuard no_tape;
  const std::int64_t n = input.size(0), K = config().num_classes;
  Tensor out = Tensor::empty(Shape{n, K});
  const float inv_members = 1.f / static_cast<float>(models_.size());
  for (std::int64_t s = 0; s < n; s += batch) {
    const std::int64_t e = std::min<std::int64_t>(n, s + batch);
    const Tensor x = input.slice0(s, e).to(device_);
    float* dst = out.data<float>() + s * K;
    for (std::size_t m = 0; m < models_.size(); ++m) {
      Tensor y = (*models_[m])(x);
      if (probabilities)
        y = kernels::softmax(temperature == 1 ? y : kernels::scale(y, static_cast<float>(1 / temperature)));
      y = to_dtype(y, DType::f32).to(Device::cpu());
      // An ensemble's mean: summed in member order, then scaled (what the ONNX export's graph computes).
      const float* v = y.data<float>();
      for (std::int64_t i = 0; i < (e - s) * K; ++i) dst[i] = m == 0 ? v[i] : dst[i] + v[i];
      if (models_.size() > 1 && m + 1 == models_.size())
        for (std::int64_t i = 0; i < (e - s) * K; ++i) dst[i] *= inv_members;
    }
  }
  return out;
}

Tensor Classifier::classify_hu(const Tensor& hu, int batch) {
  Tensor x = hu.dim() == 3 ? hu.reshape({hu.size(0), hu.size(1), hu.size(2), 1}) : hu;
  LN_CHECK(x.dim() == 4 && x.size(3) == 1, "patches in HU must be [N, H, W] or [N, H, W, 1], got ", hu.shape().str());
  LN_CHECK(x.size(1) == x.size(2), "patches must be square (the model was trained on square patches resized to ",
           config().input_size, "), got ", x.size(1), "x", x.size(2));
  LN_CHECK(x.size(1) >= 16, "patches of ", x.size(1), "x", x.size(2), " are too small to be lesion patches (at least 16x16)");
  return run(prepare(x, /*hu=*/true, /*resize=*/true), /*probabilities=*/true, batch);
}

CtLesions classify_ct_lesions(Classifier& clf, const data::PatientScan& scan, const data::ClassMap& lesions,
                              const data::ExtractOptions& o, int batch) {
  const data::PatientResult r = data::extract_patient(scan, lesions, o);
  CtLesions out;
  out.notes = r.notes;
  out.below_min_volume = r.below_min_volume;
  if (r.images.empty()) return out;
  const std::int64_t n = static_cast<std::int64_t>(r.images.size()), side = o.size;
  Tensor hu = Tensor::empty(Shape{n, side, side, 1});
  for (std::int64_t i = 0; i < n; ++i)
    std::copy_n(r.images[static_cast<std::size_t>(i)].data<float>(), side * side, hu.data<float>() + i * side * side);
  const Tensor probs = clf.classify_hu(hu, batch);
  const std::int64_t K = probs.size(1);
  for (std::int64_t s = 0; s < n; ++s) {
    const int li = r.sample_lesion[static_cast<std::size_t>(s)];
    const data::LesionRecord& l = r.lesions[static_cast<std::size_t>(li)];
    LesionPrediction p;
    p.lesion = li + 1;
    p.voxel = scan.ct.grid.to_index(l.centroid_lps);
    p.lps_mm = l.centroid_lps;
    p.volume_ml = l.volume_ml;
    p.max_diameter_mm = l.max_diameter_mm;
    p.patch_spacing_mm = l.patch_spacing_mm;
    p.probs.assign(probs.data<float>() + s * K, probs.data<float>() + (s + 1) * K);
    out.lesions.push_back(std::move(p));
  }
  return out;
}

}  // namespace livernet::train
