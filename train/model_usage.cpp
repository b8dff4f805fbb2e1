#include "train/model_usage.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/lesions.h"

namespace livernet::train {

namespace {
constexpr const char* kAttr = "usage";
}

std::string model_usage_json(const ModelUsage& u) {
  const nlohmann::json j{{"input", "HU"},
                         {"resize", "bilinear, in HU, to the model's input_size"},
                         {"window_level", u.window.level},
                         {"window_width", u.window.width},
                         {"scale", "window clipped and mapped to [-1, 1]"},
                         {"positive_class", u.positive_class},
                         {"run", u.run},
                         {"temperature", u.temperature},
                         {"calibration", u.calibration.empty() ? std::string("none (temperature 1)") : u.calibration}};
  nlohmann::json out = j;
  if (!u.extraction.empty()) out["extraction"] = nlohmann::json::parse(u.extraction);
  return out.dump();
}

ModelUsage parse_model_usage(const std::string& json, const std::string& what) {
  const nlohmann::json j = nlohmann::json::parse(json, nullptr, false);
  ModelUsage u;
  try {
    LN_CHECK(!j.is_discarded() && j.is_object(), "not JSON");
    u.window.level = j.at("window_level").get<float>();
    u.window.width = j.at("window_width").get<float>();
    u.positive_class = j.value("positive_class", "");
    u.run = j.value("run", "");
    u.temperature = j.value("temperature", 1.0);
    u.calibration = j.value("calibration", "");
    if (j.contains("extraction")) {
      u.extraction = j.at("extraction").dump();
      (void)data::parse_extraction(u.extraction, "extraction");
    }
    LN_CHECK(std::isfinite(u.temperature) && u.temperature > 0, "a temperature of ", u.temperature);
    LN_CHECK(std::isfinite(u.window.level) && std::isfinite(u.window.width) && u.window.width > 0, "a window of width ",
             u.window.width);
  } catch (const std::exception& e) {
    LN_FAIL(what, ": damaged 'usage' (", printable(e.what(), 120), ")");
  }
  return u;
}

void write_model_usage(io::H5File& f, const ModelUsage& u) { f.write_string_attr("/", kAttr, model_usage_json(u)); }

void rewrite_model_usage(const std::string& path, const ModelUsage& u) {
  io::write_file_atomically(path, [&](const std::string& tmp) {
    std::filesystem::copy_file(path, tmp, std::filesystem::copy_options::overwrite_existing);
    io::H5File f = io::H5File::open(tmp, /*writable=*/true);
    write_model_usage(f, u);
  });
}

std::optional<ModelUsage> read_model_usage(const std::string& path) {
  const io::H5File f = io::H5File::open(path);
  if (!f.has_attr("/", kAttr)) return std::nullopt;
  return parse_model_usage(f.read_string_attr("/", kAttr), path);
}

}  // namespace livernet::train
