#include "models/config.h"

#include <nlohmann/json.hpp>

#include <set>

#include "core/error.h"

namespace livernet {

void ModelConfig::validate() const {
  LN_CHECK(arch == "paper" || arch == "inception_v3", "model: unknown arch '", arch, "' (expected paper or inception_v3)");
  LN_CHECK(num_classes == 0 || num_classes >= 2, "model: num_classes must be >= 2 (or 0 for no classifier), got ",
           num_classes);
  LN_CHECK(class_names.empty() || static_cast<int>(class_names.size()) == num_classes, "model: ", class_names.size(),
           " class names for ", num_classes, " classes");
  for (int h : head_hidden) LN_CHECK(h > 0, "model: head sizes must be positive, got ", h);
  LN_CHECK(head_dropout >= 0.f && head_dropout < 1.f, "model: head_dropout must be in [0, 1), got ", head_dropout);
  LN_CHECK(fc_dropout >= 0.f && fc_dropout < 1.f, "model: fc_dropout must be in [0, 1), got ", fc_dropout);
  LN_CHECK(bn_momentum >= 0.f && bn_momentum <= 1.f, "model: bn_momentum must be in [0, 1], got ", bn_momentum);
  LN_CHECK(bn_eps > 0.f, "model: bn_eps must be positive, got ", bn_eps);
  LN_CHECK(input_size == 0 || input_size >= 75, "model: input_size must be >= 75 (or 0), got ", input_size);
}

ModelConfig ModelConfig::plain_inception_v3(Flavour flavour, int num_classes) {
  ModelConfig c;
  c.arch = "inception_v3";
  c.flavour = flavour;
  c.residual = ResidualMode::none;
  c.num_classes = num_classes;
  return c;
}

std::string ModelConfig::to_json() const {
  nlohmann::json j;
  j["arch"] = arch;
  j["flavour"] = choice_name(flavour);
  j["residual"] = choice_name(residual);
  j["residual_learnable"] = residual_learnable;
  j["residual_init"] = residual_init;
  j["head_hidden"] = head_hidden;
  j["head_dropout"] = head_dropout;
  j["fc_dropout"] = fc_dropout;
  j["num_classes"] = num_classes;
  j["class_names"] = class_names;
  j["bn_momentum"] = bn_momentum;
  j["bn_eps"] = bn_eps;
  j["input_size"] = input_size;
  return j.dump();
}

ModelConfig ModelConfig::from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    LN_FAIL("model configuration is not valid JSON: ", e.what());
  }
  LN_CHECK(j.is_object(), "model configuration must be a JSON object");
  static const std::set<std::string> known = {"arch", "flavour", "residual", "residual_learnable", "residual_init",
                                              "head_hidden", "head_dropout", "fc_dropout", "num_classes",
                                              "class_names", "bn_momentum", "bn_eps", "input_size"};
  for (auto it = j.begin(); it != j.end(); ++it)
    LN_CHECK(known.count(it.key()), "model configuration: unknown key '", it.key(), "'");
  ModelConfig c;
  try {
    if (j.contains("arch")) c.arch = j["arch"].get<std::string>();
    if (j.contains("flavour")) c.flavour = parse_choice<Flavour>("flavour", j["flavour"].get<std::string>());
    if (j.contains("residual")) c.residual = parse_choice<ResidualMode>("residual", j["residual"].get<std::string>());
    if (j.contains("residual_learnable")) c.residual_learnable = j["residual_learnable"].get<bool>();
    if (j.contains("residual_init")) c.residual_init = j["residual_init"].get<float>();
    if (j.contains("head_hidden")) c.head_hidden = j["head_hidden"].get<std::vector<int>>();
    if (j.contains("head_dropout")) c.head_dropout = j["head_dropout"].get<float>();
    if (j.contains("fc_dropout")) c.fc_dropout = j["fc_dropout"].get<float>();
    if (j.contains("num_classes")) c.num_classes = j["num_classes"].get<int>();
    if (j.contains("class_names")) c.class_names = j["class_names"].get<std::vector<std::string>>();
    if (j.contains("bn_momentum")) c.bn_momentum = j["bn_momentum"].get<float>();
    if (j.contains("bn_eps")) c.bn_eps = j["bn_eps"].get<float>();
    if (j.contains("input_size")) c.input_size = j["input_size"].get<int>();
  } catch (const nlohmann::json::exception& e) {
    LN_FAIL("model configuration: wrong type: ", e.what());
  }
  c.validate();
  return c;
}

}  // namespace livernet
