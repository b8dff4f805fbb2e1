#include "tools/common/train_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"

namespace livernet::tools {

int edit_distance(const std::string& a, const std::string& b) {
  std::vector<int> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int>(j);
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int>(i);
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

namespace {

// Reads the keys of one YAML mapping, rejecting the unknown ones.
class Section {
 public:
  Section(const YAML::Node& node, std::string where, std::vector<std::string> known)
      : node_(node && !node.IsNull() ? node : YAML::Node(YAML::NodeType::Undefined)), where_(std::move(where)),
        known_(std::move(known)) {
    if (!present()) return;
    LN_CHECK(node_.IsMap(), where_, ": expected a mapping of keys");
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      LN_CHECK(it->first.IsScalar(), where_, ": a key must be a name (line ", it->first.Mark().line + 1, ")");
      const std::string key = it->first.as<std::string>();
      if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
      std::string best;
      int dist = 4;
      for (const auto& k : known_) {
        const int d = edit_distance(key, k);
        if (d < dist) dist = d, best = k;
      }
      LN_FAIL(where_, ": unknown key '", printable(key), "'", best.empty() ? std::string() : str_cat(" (did you mean '", best, "'?)"));
    }
  }
  bool present() const { return node_.IsDefined() && !node_.IsNull(); }
  template <typename T>
  void get(const std::string& key, T& out) const {
    if (!present() || !node_[key] || node_[key].IsNull()) return;
    try {
      out = node_[key].as<T>();
    } catch (const YAML::Exception&) {
      LN_FAIL(where_, ".", key, ": expected ", type_name<T>(), ", got '", printable(YAML::Dump(node_[key])), "'");
    }
  }
  YAML::Node child(const std::string& key) const { return present() ? node_[key] : YAML::Node(YAML::NodeType::Undefined); }

 private:
  template <typename T>
  static const char* type_name() {
    if constexpr (std::is_same_v<T, bool>) return "true or false";
    else if constexpr (std::is_integral_v<T>) return "an integer";
    else if constexpr (std::is_floating_point_v<T>) return "a number";
    else if constexpr (std::is_same_v<T, std::string>) return "a string";
    else return "a list";
  }
  YAML::Node node_;
  std::string where_;
  std::vector<std::string> known_;
};

void one_of(const std::string& where, const std::string& value, std::initializer_list<const char*> options) {
  for (const char* o : options)
    if (value == o) return;
  std::string list;
  for (const char* o : options) list += (list.empty() ? "" : ", ") + std::string(o);
  LN_FAIL(where, ": '", printable(value), "' is not one of ", list);
}

}  // namespace

void TrainConfig::validate(const std::string& where) const {
  LN_CHECK(!data.empty(), where, ": data.path is required (a dataset .h5 or a manifest .csv)");
  LN_CHECK(window.width > 0, where, ": data.window_width must be > 0");
  LN_CHECK(model.input_size >= 75, where, ": data.input_size must be >= 75 (InceptionV3's minimum), got ", model.input_size);
  one_of(where + ": data.balance", balance, {"oversample", "class_weight", "none"});
  LN_CHECK(augment.rotation_deg >= 0 && augment.rotation_deg <= 180 && augment.scale >= 0 && augment.scale < 1 &&
               augment.translate >= 0 && augment.translate < 0.5 && augment.hu_shift >= 0 && augment.noise_std >= 0,
           where, ": data.augment values out of range (rotation_deg 0..180, scale 0..1, translate 0..0.5, hu_shift >= 0, noise_std >= 0)");
  try {
    model.validate();
  } catch (const Error& e) {
    LN_FAIL(where, ": ", e.what());
  }
  LN_CHECK(freeze_backbone_epochs >= 0, where, ": model.freeze_backbone_epochs must be >= 0");
  one_of(where + ": train.optimizer", optimizer, {"sgd", "adam", "adamw"});
  LN_CHECK(lr > 0, where, ": train.lr must be > 0, got ", lr);
  LN_CHECK(momentum >= 0 && momentum < 1, where, ": train.momentum must be in [0, 1)");
  LN_CHECK(weight_decay >= 0, where, ": train.weight_decay must be >= 0");
  LN_CHECK(batch_size >= 2, where, ": train.batch_size must be >= 2 (batch norm needs it), got ", batch_size);
  LN_CHECK(epochs >= 1, where, ": train.epochs must be >= 1");
  one_of(where + ": train.schedule", schedule, {"plateau", "cosine", "step", "none"});
  LN_CHECK(plateau_factor > 0 && plateau_factor < 1, where, ": train.plateau_factor must be in (0, 1)");
  LN_CHECK(plateau_patience >= 0 && early_stopping_patience >= 0, where, ": patience values must be >= 0");
  LN_CHECK(warmup_epochs >= 0 && warmup_epochs < epochs, where, ": train.warmup_epochs must be in [0, epochs)");
  one_of(where + ": train.monitor", monitor, {"val_loss", "val_auc", "val_accuracy"});
  LN_CHECK(label_smoothing >= 0 && label_smoothing < 1, where, ": train.label_smoothing must be in [0, 1)");
  LN_CHECK(clip_grad_norm >= 0, where, ": train.clip_grad_norm must be >= 0");
  one_of(where + ": train.nonfinite", nonfinite, {"skip", "stop"});
  LN_CHECK(precise_bn_samples >= 0, where, ": train.precise_bn_samples must be >= 0");
  LN_CHECK(folds >= 2 && folds <= 50, where, ": cv.folds must be in [2, 50], got ", folds);
  LN_CHECK(val_fraction > 0 && val_fraction < 0.5, where, ": cv.val_fraction must be in (0, 0.5)");
  one_of(where + ": runtime.precision", precision, {"auto", "f32", "bf16", "f16"});
  LN_CHECK(loader_threads >= 0 && loader_threads <= 64, where, ": runtime.loader_threads must be in [0, 64] (0: auto)");
}

TrainConfig parse_train_config(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    LN_FAIL(source, ": not valid YAML: ", printable(e.what(), 200));
  }
  TrainConfig c;
  if (!root || root.IsNull()) return c;
  Section top(root, source, {"data", "model", "train", "cv", "runtime"});
  Section data(top.child("data"), source + ": data",
               {"path", "window_level", "window_width", "input_size", "augment", "balance", "positive_class", "class_names"});
  data.get("path", c.data);
  data.get("window_level", c.window.level);
  data.get("window_width", c.window.width);
  data.get("input_size", c.model.input_size);
  data.get("balance", c.balance);
  data.get("positive_class", c.positive_class);
  data.get("class_names", c.model.class_names);
  Section aug(data.child("augment"), source + ": data.augment",
              {"enabled", "flips", "rot90", "rotation_deg", "scale", "translate", "hu_shift", "noise_std"});
  aug.get("enabled", c.augment.enabled);
  aug.get("flips", c.augment.flips);
  aug.get("rot90", c.augment.rot90);
  aug.get("rotation_deg", c.augment.rotation_deg);
  aug.get("scale", c.augment.scale);
  aug.get("translate", c.augment.translate);
  aug.get("hu_shift", c.augment.hu_shift);
  aug.get("noise_std", c.augment.noise_std);
  Section model(top.child("model"), source + ": model",
                {"arch", "flavour", "residual", "residual_learnable", "residual_init", "head_hidden", "head_dropout",
                 "fc_dropout", "weights", "freeze_backbone_epochs", "bn_momentum", "bn_eps"});
  model.get("arch", c.model.arch);
  std::string s;
  model.get("flavour", s);
  try {
    if (!s.empty()) c.model.flavour = parse_flavour(s);
  } catch (const Error& e) {
    LN_FAIL(source, ": model.flavour: ", printable(e.what(), 200));
  }
  s.clear();
  model.get("residual", s);
  try {
    if (!s.empty()) c.model.residual = parse_residual_mode(s);
  } catch (const Error& e) {
    LN_FAIL(source, ": model.residual: ", printable(e.what(), 200));
  }
  model.get("residual_learnable", c.model.residual_learnable);
  model.get("residual_init", c.model.residual_init);
  model.get("head_hidden", c.model.head_hidden);
  model.get("head_dropout", c.model.head_dropout);
  model.get("fc_dropout", c.model.fc_dropout);
  model.get("weights", c.weights);
  model.get("freeze_backbone_epochs", c.freeze_backbone_epochs);
  model.get("bn_momentum", c.model.bn_momentum);
  model.get("bn_eps", c.model.bn_eps);
  Section train(top.child("train"), source + ": train",
                {"optimizer", "lr", "momentum", "nesterov", "weight_decay", "batch_size", "epochs", "schedule",
                 "plateau_factor", "plateau_patience", "min_lr", "warmup_epochs", "step_size", "step_gamma",
                 "early_stopping_patience", "monitor", "label_smoothing", "clip_grad_norm", "nonfinite",
                 "precise_bn_samples"});
  train.get("optimizer", c.optimizer);
  train.get("lr", c.lr);
  train.get("momentum", c.momentum);
  train.get("nesterov", c.nesterov);
  train.get("weight_decay", c.weight_decay);
  train.get("batch_size", c.batch_size);
  train.get("epochs", c.epochs);
  train.get("schedule", c.schedule);
  train.get("plateau_factor", c.plateau_factor);
  train.get("plateau_patience", c.plateau_patience);
  train.get("min_lr", c.min_lr);
  train.get("warmup_epochs", c.warmup_epochs);
  train.get("step_size", c.step_size);
  train.get("step_gamma", c.step_gamma);
  train.get("early_stopping_patience", c.early_stopping_patience);
  train.get("monitor", c.monitor);
  train.get("label_smoothing", c.label_smoothing);
  train.get("clip_grad_norm", c.clip_grad_norm);
  train.get("nonfinite", c.nonfinite);
  train.get("precise_bn_samples", c.precise_bn_samples);
  Section cv(top.child("cv"), source + ": cv", {"folds", "val_fraction", "seed"});
  cv.get("folds", c.folds);
  cv.get("val_fraction", c.val_fraction);
  cv.get("seed", c.seed);
  Section rt(top.child("runtime"), source + ": runtime", {"device", "precision", "loader_threads", "deterministic"});
  rt.get("device", c.device);
  rt.get("precision", c.precision);
  rt.get("loader_threads", c.loader_threads);
  rt.get("deterministic", c.deterministic);
  return c;
}

TrainConfig load_train_config(const std::string& path) {
  std::ifstream in(path);
  LN_CHECK(in, path, ": cannot open the configuration");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_train_config(ss.str(), path);
}

std::string TrainConfig::to_yaml() const {
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "path" << YAML::Value << data;
  e << YAML::Key << "window_level" << YAML::Value << window.level;
  e << YAML::Key << "window_width" << YAML::Value << window.width;
  e << YAML::Key << "input_size" << YAML::Value << model.input_size;
  e << YAML::Key << "balance" << YAML::Value << balance;
  e << YAML::Key << "positive_class" << YAML::Value << positive_class;
  e << YAML::Key << "class_names" << YAML::Value << YAML::Flow << model.class_names;
  e << YAML::Key << "augment" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "enabled" << YAML::Value << augment.enabled << YAML::Key << "flips" << YAML::Value << augment.flips;
  e << YAML::Key << "rot90" << YAML::Value << augment.rot90 << YAML::Key << "rotation_deg" << YAML::Value << augment.rotation_deg;
  e << YAML::Key << "scale" << YAML::Value << augment.scale << YAML::Key << "translate" << YAML::Value << augment.translate;
  e << YAML::Key << "hu_shift" << YAML::Value << augment.hu_shift << YAML::Key << "noise_std" << YAML::Value << augment.noise_std;
  e << YAML::EndMap << YAML::EndMap;
  e << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "arch" << YAML::Value << model.arch;
  e << YAML::Key << "flavour" << YAML::Value << flavour_name(model.flavour);
  e << YAML::Key << "residual" << YAML::Value << residual_mode_name(model.residual);
  e << YAML::Key << "residual_learnable" << YAML::Value << model.residual_learnable;
  e << YAML::Key << "residual_init" << YAML::Value << model.residual_init;
  e << YAML::Key << "head_hidden" << YAML::Value << YAML::Flow << model.head_hidden;
  e << YAML::Key << "head_dropout" << YAML::Value << model.head_dropout;
  e << YAML::Key << "fc_dropout" << YAML::Value << model.fc_dropout;
  e << YAML::Key << "weights" << YAML::Value << weights;
  e << YAML::Key << "freeze_backbone_epochs" << YAML::Value << freeze_backbone_epochs;
  e << YAML::Key << "bn_momentum" << YAML::Value << model.bn_momentum;
  e << YAML::Key << "bn_eps" << YAML::Value << model.bn_eps;
  e << YAML::EndMap;
  e << YAML::Key << "train" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "optimizer" << YAML::Value << optimizer << YAML::Key << "lr" << YAML::Value << lr;
  e << YAML::Key << "momentum" << YAML::Value << momentum << YAML::Key << "nesterov" << YAML::Value << nesterov;
  e << YAML::Key << "weight_decay" << YAML::Value << weight_decay << YAML::Key << "batch_size" << YAML::Value << batch_size;
  e << YAML::Key << "epochs" << YAML::Value << epochs << YAML::Key << "schedule" << YAML::Value << schedule;
  e << YAML::Key << "plateau_factor" << YAML::Value << plateau_factor << YAML::Key << "plateau_patience" << YAML::Value << plateau_patience;
  e << YAML::Key << "min_lr" << YAML::Value << min_lr << YAML::Key << "warmup_epochs" << YAML::Value << warmup_epochs;
  e << YAML::Key << "step_size" << YAML::Value << step_size << YAML::Key << "step_gamma" << YAML::Value << step_gamma;
  e << YAML::Key << "early_stopping_patience" << YAML::Value << early_stopping_patience;
  e << YAML::Key << "monitor" << YAML::Value << monitor << YAML::Key << "label_smoothing" << YAML::Value << label_smoothing;
  e << YAML::Key << "clip_grad_norm" << YAML::Value << clip_grad_norm << YAML::Key << "nonfinite" << YAML::Value << nonfinite;
  e << YAML::Key << "precise_bn_samples" << YAML::Value << precise_bn_samples;
  e << YAML::EndMap;
  e << YAML::Key << "cv" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "folds" << YAML::Value << folds << YAML::Key << "val_fraction" << YAML::Value << val_fraction;
  e << YAML::Key << "seed" << YAML::Value << seed << YAML::EndMap;
  e << YAML::Key << "runtime" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "device" << YAML::Value << device << YAML::Key << "precision" << YAML::Value << precision;
  e << YAML::Key << "loader_threads" << YAML::Value << loader_threads << YAML::Key << "deterministic" << YAML::Value << deterministic;
  e << YAML::EndMap << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

}  // namespace livernet::tools
