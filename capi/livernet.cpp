// The C API (capi/livernet.h) over train::Classifier: every entry point catches everything and turns it
// into a per-thread error string.
#include "livernet.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/error.h"
#include "core/version.h"
#include "train/classifier.h"

using namespace livernet;

struct livernet_model {
  std::unique_ptr<train::Classifier> clf;
  std::vector<std::string> class_names;
  int positive = -1;
};

namespace {

thread_local std::string g_error;

template <typename F>
auto guarded(F&& f, decltype(f()) on_error) -> decltype(f()) {
  g_error.clear();
  try {
    return f();
  } catch (const std::exception& e) {
    g_error = e.what();
  } catch (...) {
    g_error = "unknown error";
  }
  return on_error;
}

}  // namespace

extern "C" {

int livernet_api_version(void) { return LIVERNET_API_VERSION; }
const char* livernet_version(void) { return livernet::version(); }
const char* livernet_last_error(void) { return g_error.c_str(); }

livernet_model* livernet_model_load(const char* path, const char* device) {
  return guarded(
      [&]() -> livernet_model* {
        LN_CHECK(path != nullptr, "livernet_model_load: path is NULL");
        auto m = std::make_unique<livernet_model>();
        m->clf = std::make_unique<train::Classifier>(path, resolve_device(device ? device : "auto"));
        m->class_names = m->clf->class_names();
        if (const auto& u = m->clf->usage())
          for (std::size_t k = 0; k < m->class_names.size(); ++k)
            if (m->class_names[k] == u->positive_class) m->positive = static_cast<int>(k);
        return m.release();
      },
      nullptr);
}

void livernet_model_free(livernet_model* model) { delete model; }

int livernet_model_num_classes(const livernet_model* model) {
  return guarded([&] {
    LN_CHECK(model, "livernet_model_num_classes: model is NULL");
    return static_cast<int>(model->class_names.size());
  }, -1);
}

const char* livernet_model_class_name(const livernet_model* model, int k) {
  return guarded([&]() -> const char* {
    LN_CHECK(model, "livernet_model_class_name: model is NULL");
    LN_CHECK(k >= 0 && k < static_cast<int>(model->class_names.size()), "livernet_model_class_name: class ", k,
             " of ", model->class_names.size());
    return model->class_names[static_cast<std::size_t>(k)].c_str();
  }, nullptr);
}

int livernet_model_positive_class(const livernet_model* model) {
  return guarded([&] {
    LN_CHECK(model, "livernet_model_positive_class: model is NULL");
    return model->positive;
  }, -1);
}

int livernet_model_input_size(const livernet_model* model) {
  return guarded([&] {
    LN_CHECK(model, "livernet_model_input_size: model is NULL");
    return model->clf->config().input_size;
  }, -1);
}

void livernet_model_window(const livernet_model* model, float* level, float* width) {
  guarded([&] {
    LN_CHECK(model, "livernet_model_window: model is NULL");
    if (level) *level = model->clf->window.level;
    if (width) *width = model->clf->window.width;
    return 0;
  }, -1);
}

double livernet_model_temperature(const livernet_model* model) {
  return guarded([&] {
    LN_CHECK(model, "livernet_model_temperature: model is NULL");
    return model->clf->temperature;
  }, -1.0);
}

int livernet_classify_hu(livernet_model* model, const float* hu, int n, int height, int width, float* probs) {
  return guarded([&] {
    LN_CHECK(model && hu && probs, "livernet_classify_hu: model, hu and probs must not be NULL");
    LN_CHECK(n >= 1 && height >= 1 && width >= 1, "livernet_classify_hu: n, height and width must be positive, got ", n,
             ", ", height, ", ", width);
    const std::size_t count = static_cast<std::size_t>(n) * static_cast<std::size_t>(height) * static_cast<std::size_t>(width);
    for (std::size_t i = 0; i < count; ++i)
      LN_CHECK(std::isfinite(hu[i]), "livernet_classify_hu: patch ", i / (static_cast<std::size_t>(height) * width),
               " holds NaN or infinity");
    std::vector<float> copy(hu, hu + count);
    const Tensor x = Tensor::from_vector(copy, Shape{n, height, width, 1});
    const Tensor p = model->clf->classify_hu(x);
    std::memcpy(probs, p.data<float>(), p.nbytes());
    return 0;
  }, -1);
}

livernet_patch_options livernet_patch_options_default(void) {
  const data::ExtractOptions o;
  return livernet_patch_options{o.spacing_mm, o.size, o.margin_mm, o.min_volume_mm3};
}

livernet_patch_options livernet_model_patch_options(const livernet_model* model) {
  if (!model) return livernet_patch_options_default();
  const data::ExtractOptions& o = model->clf->extraction;  // extract_lesions' defaults when the file records none
  return livernet_patch_options{o.spacing_mm, o.size, o.margin_mm, o.min_volume_mm3};
}

int livernet_classify_volume(livernet_model* model, const float* hu, const unsigned char* mask, int ni, int nj, int nk,
                             const double spacing[3], const double origin[3], const double axes[9],
                             const livernet_patch_options* options, livernet_lesion** lesions, float** probs) {
  return guarded([&] {
    LN_CHECK(model && hu && mask && spacing && origin && axes && lesions && probs,
             "livernet_classify_volume: no argument may be NULL except options");
    *lesions = nullptr;
    *probs = nullptr;
    LN_CHECK(ni >= 1 && nj >= 1 && nk >= 1, "livernet_classify_volume: sizes must be positive, got ", ni, "x", nj, "x", nk);
    io::Grid g;
    g.size = {ni, nj, nk};
    for (int a = 0; a < 3; ++a) {
      g.spacing[a] = spacing[a];
      g.origin[a] = origin[a];
      for (int b = 0; b < 3; ++b) g.axes[a][b] = axes[3 * a + b];
    }
    g.validate("livernet_classify_volume");
    data::ExtractOptions o = model->clf->extraction;  // the training data's, when the model file records them
    o.neighbours = 0;                                 // one patch per lesion, as tools/predict --ct cuts
    if (options) {
      LN_CHECK(options->spacing_mm > 0 && options->size >= 16 && options->size <= 1024 && options->margin_mm >= 0 &&
                   options->min_volume_mm3 >= 0,
               "livernet_classify_volume: options out of range (spacing_mm > 0, size 16..1024, margin_mm >= 0, "
               "min_volume_mm3 >= 0)");
      o.spacing_mm = options->spacing_mm;
      o.size = options->size;
      o.margin_mm = options->margin_mm;
      o.min_volume_mm3 = options->min_volume_mm3;
    }
    data::PatientScan scan;
    scan.patient = "volume";
    scan.ct = io::Volume(g);
    io::Mask m(g);
    for (std::size_t i = 0; i < scan.ct.v.size(); ++i) {
      LN_CHECK(std::isfinite(hu[i]), "livernet_classify_volume: voxel ", i, " of the volume holds NaN or infinity");
      scan.ct.v[i] = hu[i];
      m.v[i] = mask[i] != 0;
    }
    scan.structures.emplace_back("lesion", std::move(m));
    const train::CtLesions r = train::classify_ct_lesions(*model->clf, scan, data::ClassMap::single("lesion", "lesion", "mask"), o);
    const std::size_t n = r.lesions.size(), K = model->class_names.size();
    if (n == 0) return 0;
    auto* ls = static_cast<livernet_lesion*>(std::calloc(n, sizeof(livernet_lesion)));
    auto* ps = static_cast<float*>(std::calloc(n * K, sizeof(float)));
    if (!ls || !ps) {
      std::free(ls);
      std::free(ps);
      LN_FAIL("livernet_classify_volume: out of memory");
    }
    for (std::size_t i = 0; i < n; ++i) {
      const train::LesionPrediction& l = r.lesions[i];
      ls[i].lesion = l.lesion;
      for (int a = 0; a < 3; ++a) {
        ls[i].voxel[a] = l.voxel[a];
        ls[i].lps_mm[a] = l.lps_mm[a];
      }
      ls[i].volume_ml = l.volume_ml;
      ls[i].max_diameter_mm = l.max_diameter_mm;
      std::copy(l.probs.begin(), l.probs.end(), ps + i * K);
    }
    *lesions = ls;
    *probs = ps;
    return static_cast<int>(n);
  }, -1);
}

void livernet_free(void* p) { std::free(p); }

}  // extern "C"
