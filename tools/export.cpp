// tools/export: a trained model -> ONNX (models/onnx.h), for onnxruntime, TensorRT, 3D Slicer, MONAI Deploy
// and the like, or a run's fold models -> one livernet ensemble file. The model file's window and temperature
// go into the graph, its description into the ONNX metadata.
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "models/onnx.h"
#include "models/weights.h"
#include "tools/cli.h"
#include "train/model_usage.h"
#include "train/train_config.h"
#include "train/trainer.h"

using namespace livernet;
namespace fs = std::filesystem;

namespace {

// The models `path` names: a model file, an ensemble file, or a run directory (its fold models, as an
// ensemble); `usage_from` is set to the file whose usage (window, temperature) applies.
std::vector<std::unique_ptr<LesionClassifier>> load_models(const std::string& path, std::string& usage_from) {
  std::vector<std::unique_ptr<LesionClassifier>> out;
  usage_from = path;
  if (fs::is_directory(path)) {
    LN_CHECK(fs::exists(path + "/config.yaml"), path, ": a directory, but not a run directory (no config.yaml)");
    train::check_fold_numbering(path);
    const train::TrainConfig cfg = train::load_train_config(path + "/config.yaml");
    LN_CHECK(fs::exists(path + "/metrics.json"), path,
             ": the run has not finished (no metrics.json), so its fold models are not all trained and calibrated; "
             "finish it with tools/train --resume ",
             path);
    for (int k = 0; k < cfg.folds; ++k) out.push_back(io::load_model(train::fold_model(path, k)));
    usage_from = train::fold_model(path, 0);
  } else if (io::ensemble_members(path) > 0) {
    out = io::load_ensemble(path);
  } else {
    out.push_back(io::load_model(path));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "Exports a livernet model to ONNX: a model file (tools/train's best.h5 or final/model.h5), an ensemble file, "
      "or a run directory (its fold models as one ensemble, their probabilities averaged). ONNX opset 17, dynamic "
      "batch, NCHW, float32. Inputs: 'hu' [batch, 1, S, S] in Hounsfield units (windowed in the graph as training "
      "did), or with --input image 'image' [batch, 1, S, S] already scaled to [-1, 1]. Outputs: 'logits' and "
      "'probabilities' (softmax of logits / the model's temperature) [batch, classes]. --format ensemble writes a "
      "run's fold models as one livernet ensemble file instead, which tools/predict and the C API use as one model.",
      "export");
  std::string format = "onnx", model_path, output, input = "hu";
  bool uncalibrated = false;
  float level = 40.f, width = 400.f;
  app.add_option("model", model_path, "a livernet model or ensemble file (.h5), or a run directory")->required();
  app.add_option("--format", format, "onnx (default), or ensemble (a livernet ensemble file)")
      ->check(CLI::IsMember({"onnx", "ensemble"}));
  app.add_option("--output,-o", output, "the file to write (model.onnx, ensemble.h5)")->required();
  app.add_option("--input", input,
                 "what the graph takes: hu (windowed in the graph; default) or image (already in [-1, 1])")
      ->check(CLI::IsMember({"hu", "image"}));
  app.add_option("--window-level", level, "HU window level (default: the one the model was trained with, else 40)");
  app.add_option("--window-width", width, "HU window width (default: the model's, else 400)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--uncalibrated", uncalibrated, "probabilities without the temperature the model file records");
  return tools::run(app, argc, argv, [&] {
    const bool window_given = app.count("--window-level") + app.count("--window-width") > 0;
    LN_CHECK(input == "hu" || !window_given, "--window-level/--window-width apply to --input hu only");
    LN_CHECK(format == "onnx" || (!window_given && !uncalibrated && !app.count("--input")),
             "--input, --window-level, --window-width and --uncalibrated apply to --format onnx only");
    std::string usage_from;
    const std::vector<std::unique_ptr<LesionClassifier>> models = load_models(model_path, usage_from);
    std::vector<LesionClassifier*> members;
    for (const auto& m : models) members.push_back(m.get());
    const std::optional<train::ModelUsage> usage = train::read_model_usage(usage_from);
    if (format == "ensemble") {
      LN_CHECK(members.size() >= 2, model_path,
               ": one model; --format ensemble takes a run directory (its fold models) or an ensemble file");
      io::save_ensemble(members, output, [&](io::H5File& f) {
        if (usage) train::write_model_usage(f, *usage);
      });
      std::printf("wrote %s: an ensemble of %zu models (%s), their probabilities averaged; use it as one model file\n",
                  output.c_str(), members.size(), model_path.c_str());
      return 0;
    }
    io::OnnxExportOptions o;
    o.from_hu = input == "hu";
    if (usage) {
      o.window_level = usage->window.level;
      o.window_width = usage->window.width;
      if (!uncalibrated) o.temperature = usage->temperature;
      o.metadata.emplace_back("livernet.usage", train::model_usage_json(*usage));
      o.metadata.emplace_back("positive_class", usage->positive_class);
      o.metadata.emplace_back("run", usage->run);
    }
    if (app.count("--window-level")) o.window_level = level;
    if (app.count("--window-width")) o.window_width = width;
    if (usage && o.from_hu && (o.window_level != usage->window.level || o.window_width != usage->window.width))
      std::fprintf(stderr,
                   "export: warning: --window-level/--window-width (%g, %g) differ from the window %s was trained "
                   "with (%g, %g)\n",
                   o.window_level, o.window_width, model_path.c_str(), usage->window.level, usage->window.width);
    const ModelConfig& cfg = members[0]->config();
    std::string classes;
    for (int k = 0; k < cfg.num_classes; ++k)
      classes +=
          (k ? "," : "") + (k < static_cast<int>(cfg.class_names.size()) ? cfg.class_names[k] : str_cat("class", k));
    o.metadata.emplace_back("classes", classes);
    o.metadata.emplace_back("source", fs::path(model_path).filename().string());
    const std::string ensemble =
        members.size() > 1 ? str_cat(", an ensemble of ", members.size(), " models") : std::string();
    o.doc = str_cat("livernet ", cfg.arch, " (InceptionV3, ", choice_name(cfg.flavour), " flavour) lesion classifier",
                    ensemble, "; classes ", classes, ". Inputs and outputs: docs/deploy.md.");
    try {
      io::export_onnx(members, o, output);
    } catch (const Error& e) {
      throw Error(str_cat(model_path, ": ", e.what()));
    }
    const std::string S = cfg.input_size > 0 ? std::to_string(cfg.input_size) : "H";
    const std::string window =
        o.from_hu ? str_cat(" in HU, window level ", o.window_level, " width ", o.window_width, " -> [-1, 1]")
                  : std::string(" in [-1, 1]");
    std::printf(
        "wrote %s: ONNX opset %d%s, input '%s' [batch, 1, %s, %s]%s, outputs 'logits' and 'probabilities' "
        "[batch, %d] (classes %s; temperature %g)\n",
        output.c_str(), io::kOnnxOpset, ensemble.c_str(), o.from_hu ? "hu" : "image", S.c_str(),
        cfg.input_size > 0 ? S.c_str() : "W", window.c_str(), cfg.num_classes, classes.c_str(), o.temperature);
    return 0;
  });
}
