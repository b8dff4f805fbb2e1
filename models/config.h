// The model configuration: which network, which InceptionV3 flavour, where the residual shortcuts go,
// and the classifier head. Stored as JSON in every weight file and checkpoint.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "core/choices.h"

namespace livernet {

enum class Flavour { keras, torchvision };
enum class ResidualMode { none, identity, projection };
template <>
struct Choices<Flavour> {
  static constexpr std::array<const char*, 2> names{"keras", "torchvision"};
};
template <>
struct Choices<ResidualMode> {
  static constexpr std::array<const char*, 3> names{"none", "identity", "projection"};
};

struct ModelConfig {
  // "paper": InceptionV3 + residual shortcuts + FC head (the paper's model, our default).
  // "inception_v3": plain InceptionV3 with a single fc layer (torchvision's/Keras' classifier).
  std::string arch = "paper";
  // keras: BN without gamma, average pools exclude padding; torchvision: BN with gamma, pools divide by 9.
  Flavour flavour = Flavour::keras;
  // Residual shortcuts (arch "paper"): identity around the blocks whose input and output shapes match
  // (Mixed_5d, Mixed_6b..6e, Mixed_7c); projection adds 1x1 shortcuts (after a 3x3/2 max pool on the
  // reduction blocks) to the other mixed blocks. y = block(x) + a * shortcut(x).
  ResidualMode residual = ResidualMode::identity;
  bool residual_learnable = true;
  // 0 keeps the pretrained network's function exactly at step 0 (see docs/model.md).
  float residual_init = 0.f;
  // Head (arch "paper"): GAP -> [FC h -> ReLU -> Dropout]* -> FC num_classes.
  std::vector<int> head_hidden = {512, 512};
  float head_dropout = 0.4f;
  // Dropout before the single fc of arch "inception_v3" (torchvision: 0.5).
  float fc_dropout = 0.5f;
  // Output classes; 0 = no classifier (a backbone-only weight file, e.g. Keras "notop").
  int num_classes = 2;
  std::vector<std::string> class_names;  // optional, num_classes entries
  // The square input size the model was trained at (inputs of other sizes are resized to it by the
  // tools); 0 = use inputs as they come. Any size >= 75 runs.
  int input_size = 299;
  // BN momentum as the weight of the new batch (PyTorch's convention and default; Keras' 0.99 is 0.01
  // here, which adapts the running statistics too slowly for short fine-tuning runs) and epsilon.
  float bn_momentum = 0.1f;
  float bn_eps = 1e-3f;

  // JSON round trip; from_json rejects unknown keys and bad values with a clear message.
  std::string to_json() const;
  static ModelConfig from_json(const std::string& json);
  // The plain InceptionV3 of `flavour` (arch inception_v3, no shortcuts, one fc of num_classes; 0: none).
  static ModelConfig plain_inception_v3(Flavour flavour, int num_classes);
  // Throws Error when a field is out of range.
  void validate() const;
};


}  // namespace livernet
