#include "train/train_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <type_traits>
#include <set>
#include <sstream>

#include "core/error.h"

namespace livernet::train {

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
    if constexpr (std::is_enum_v<T>) {
      std::string name;
      get(key, name);
      out = parse_choice<T>(where_ + "." + key, name);
    } else {
      try {
        out = node_[key].as<T>();
      } catch (const YAML::Exception&) {
        LN_FAIL(where_, ".", key, ": expected ", type_name<T>(), ", got '", printable(YAML::Dump(node_[key])), "'");
      }
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


// Every key of the configuration file in file order: its section ("data", "data.augment", ...), its
// name and the member it sets. Parsing, the lists of known keys and the saved config.yaml all walk this
// one list. Config is TrainConfig or const TrainConfig.
template <typename Config, typename F>
void for_each_field(Config& c, F&& f) {
  f("data", "path", c.data);
  f("data", "window_level", c.window.level);
  f("data", "window_width", c.window.width);
  f("data", "input_size", c.model.input_size);
  f("data", "balance", c.balance);
  f("data", "positive_class", c.positive_class);
  f("data", "class_names", c.model.class_names);
  f("data.augment", "enabled", c.augment.enabled);
  f("data.augment", "flips", c.augment.flips);
  f("data.augment", "rot90", c.augment.rot90);
  f("data.augment", "rotation_deg", c.augment.rotation_deg);
  f("data.augment", "scale", c.augment.scale);
  f("data.augment", "translate", c.augment.translate);
  f("data.augment", "hu_shift", c.augment.hu_shift);
  f("data.augment", "noise_std", c.augment.noise_std);
  f("model", "arch", c.model.arch);
  f("model", "flavour", c.model.flavour);
  f("model", "residual", c.model.residual);
  f("model", "residual_learnable", c.model.residual_learnable);
  f("model", "residual_init", c.model.residual_init);
  f("model", "head_hidden", c.model.head_hidden);
  f("model", "head_dropout", c.model.head_dropout);
  f("model", "fc_dropout", c.model.fc_dropout);
  f("model", "weights", c.weights);
  f("model", "freeze_backbone_epochs", c.freeze_backbone_epochs);
  f("model", "bn_momentum", c.model.bn_momentum);
  f("model", "bn_eps", c.model.bn_eps);
  f("train", "optimizer", c.optimizer);
  f("train", "lr", c.lr);
  f("train", "momentum", c.momentum);
  f("train", "nesterov", c.nesterov);
  f("train", "weight_decay", c.weight_decay);
  f("train", "batch_size", c.batch_size);
  f("train", "epochs", c.epochs);
  f("train", "schedule", c.schedule);
  f("train", "plateau_factor", c.plateau_factor);
  f("train", "plateau_patience", c.plateau_patience);
  f("train", "min_lr", c.min_lr);
  f("train", "warmup_epochs", c.warmup_epochs);
  f("train", "step_size", c.step_size);
  f("train", "step_gamma", c.step_gamma);
  f("train", "early_stopping_patience", c.early_stopping_patience);
  f("train", "monitor", c.monitor);
  f("train", "label_smoothing", c.label_smoothing);
  f("train", "clip_grad_norm", c.clip_grad_norm);
  f("train", "nonfinite", c.nonfinite);
  f("train", "precise_bn_samples", c.precise_bn_samples);
  f("cv", "folds", c.folds);
  f("cv", "val_fraction", c.val_fraction);
  f("cv", "seed", c.seed);
  f("cv", "final", c.final_model);
  f("cv", "repeats", c.repeats);
  f("runtime", "device", c.device);
  f("runtime", "precision", c.precision);
  f("runtime", "loader_threads", c.loader_threads);
  f("runtime", "deterministic", c.deterministic);
  f("runtime", "parallel", c.parallel);
  f("runtime", "sync_batch_norm", c.sync_batch_norm);
}

// The known keys of `section` ("" for the top level): its fields and its sub-sections.
std::vector<std::string> known_keys(const std::string& section) {
  std::vector<std::string> keys;
  auto add = [&](const std::string& k) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  };
  const TrainConfig c;
  for_each_field(c, [&](const std::string& sec, const std::string& key, const auto&) {
    if (sec == section) add(key);
    const std::string prefix = section.empty() ? "" : section + ".";
    if (sec.size() > prefix.size() && sec.compare(0, prefix.size(), prefix) == 0)
      add(sec.substr(prefix.size(), sec.find('.', prefix.size()) - prefix.size()));
  });
  return keys;
}

}  // namespace

std::vector<std::string> config_keys() {
  std::vector<std::string> keys;
  const TrainConfig c;
  for_each_field(c, [&](const std::string& sec, const std::string& key, const auto&) { keys.push_back(sec + "." + key); });
  return keys;
}

void TrainConfig::validate(const std::string& where) const {
  LN_CHECK(!data.empty(), where, ": data.path is required (a dataset .h5 or a manifest .csv)");
  LN_CHECK(window.width > 0, where, ": data.window_width must be > 0");
  LN_CHECK(model.input_size >= 75, where, ": data.input_size must be >= 75 (InceptionV3's minimum), got ", model.input_size);
  LN_CHECK(augment.rotation_deg >= 0 && augment.rotation_deg <= 180 && augment.scale >= 0 && augment.scale < 1 &&
               augment.translate >= 0 && augment.translate < 0.5 && augment.hu_shift >= 0 && augment.noise_std >= 0,
           where, ": data.augment values out of range (rotation_deg 0..180, scale 0..1, translate 0..0.5, hu_shift >= 0, noise_std >= 0)");
  try {
    model.validate();
  } catch (const Error& e) {
    LN_FAIL(where, ": ", e.what());
  }
  LN_CHECK(freeze_backbone_epochs >= 0, where, ": model.freeze_backbone_epochs must be >= 0");
  LN_CHECK(lr > 0, where, ": train.lr must be > 0, got ", lr);
  LN_CHECK(momentum >= 0 && momentum < 1, where, ": train.momentum must be in [0, 1)");
  LN_CHECK(weight_decay >= 0, where, ": train.weight_decay must be >= 0");
  LN_CHECK(batch_size >= 2, where, ": train.batch_size must be >= 2 (batch norm needs it), got ", batch_size);
  LN_CHECK(epochs >= 1, where, ": train.epochs must be >= 1");
  LN_CHECK(plateau_factor > 0 && plateau_factor < 1, where, ": train.plateau_factor must be in (0, 1)");
  LN_CHECK(plateau_patience >= 0 && early_stopping_patience >= 0, where, ": patience values must be >= 0");
  LN_CHECK(warmup_epochs >= 0 && warmup_epochs < epochs, where, ": train.warmup_epochs must be in [0, epochs)");
  LN_CHECK(label_smoothing >= 0 && label_smoothing < 1, where, ": train.label_smoothing must be in [0, 1)");
  LN_CHECK(clip_grad_norm >= 0, where, ": train.clip_grad_norm must be >= 0");
  LN_CHECK(precise_bn_samples >= 0, where, ": train.precise_bn_samples must be >= 0");
  LN_CHECK(folds >= 2 && folds <= 50, where, ": cv.folds must be in [2, 50], got ", folds);
  LN_CHECK(val_fraction > 0 && val_fraction < 0.5, where, ": cv.val_fraction must be in (0, 0.5)");
  LN_CHECK(repeats >= 1 && repeats <= 100, where, ": cv.repeats must be in [1, 100]");
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
  // Each section is checked for unknown keys when first reached (parents first: the walk is in file order).
  std::map<std::string, Section> sections;
  sections.emplace("", Section(root, source, known_keys("")));
  auto section = [&](const std::string& path) -> const Section& {
    auto it = sections.find(path);
    if (it != sections.end()) return it->second;
    const std::size_t dot = path.rfind('.');
    const std::string parent = dot == std::string::npos ? "" : path.substr(0, dot);
    const std::string name = dot == std::string::npos ? path : path.substr(dot + 1);
    const YAML::Node node = sections.at(parent).child(name);
    return sections.emplace(path, Section(node, source + ": " + path, known_keys(path))).first->second;
  };
  for_each_field(c, [&](const std::string& sec, const std::string& key, auto& member) { section(sec).get(key, member); });
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
  std::vector<std::string> open;  // the section path whose maps are open, outermost first
  for_each_field(*this, [&](const std::string& sec, const std::string& key, const auto& value) {
    std::vector<std::string> path;
    for (std::size_t at = 0; at <= sec.size();) {
      const std::size_t dot = std::min(sec.find('.', at), sec.size());
      path.push_back(sec.substr(at, dot - at));
      at = dot + 1;
    }
    std::size_t common = 0;
    while (common < open.size() && common < path.size() && open[common] == path[common]) ++common;
    for (; open.size() > common; open.pop_back()) e << YAML::EndMap;
    for (; open.size() < path.size(); open.push_back(path[open.size()]))
      e << YAML::Key << path[open.size()] << YAML::Value << YAML::BeginMap;
    using T = std::decay_t<decltype(value)>;
    e << YAML::Key << key << YAML::Value;
    if constexpr (std::is_enum_v<T>) e << choice_name(value);
    else if constexpr (std::is_same_v<T, std::vector<int>> || std::is_same_v<T, std::vector<std::string>>) e << YAML::Flow << value;
    else e << value;
  });
  for (; !open.empty(); open.pop_back()) e << YAML::EndMap;
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

}  // namespace livernet::train
