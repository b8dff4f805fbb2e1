// The C API (capi/livernet.h) over train::Classifier: every entry point catches everything and turns it
// into a per-thread error string.
#include "livernet.h"

#include <cmath>
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

}  // extern "C"
