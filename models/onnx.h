// ONNX export and read-back of a LesionClassifier (docs/deploy.md).
//
// Export traces one forward pass in eval mode (layers/trace.h) and writes the ops it ran as a standard
// ONNX graph (default domain, opset 17, IR version 8) in NCHW: the engine's NHWC activations become NCHW
// tensors, conv weights OIHW (the weight file's layout), concat axes renumbered. Every parameter and buffer
// is an initializer under its dotted name ("backbone.Mixed_5b.branch1x1.conv.weight"), so the file can be
// read back exactly. Inputs and outputs:
//   input         "image" [batch, 1, S, S] in [-1, 1] (the model input), or with from_hu "hu" [batch, 1, S, S]
//                 in Hounsfield units, windowed in the graph (clip((hu - (level - width/2)) * 2/width - 1, -1, 1))
//                 as training prepared its patches; batch is dynamic, S the model's input size (dynamic too
//                 when the model's input_size is 0)
//   "logits"        [batch, classes]
//   "probabilities" [batch, classes] = softmax(logits / temperature)
// The model file's description (architecture config as JSON, classes, window, temperature, ...) goes into
// the model's metadata_props; the protobuf is written by io/protobuf.h, no protobuf library needed.
// An ensemble (models/weights.h) is exported as its members side by side on the one input, their initializers
// prefixed "member_<i>.", with "logits" the mean of theirs and "probabilities" the mean of theirs.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/inception_v3.h"

namespace livernet::io {

constexpr int kOnnxOpset = 17;
constexpr int kOnnxIrVersion = 8;
// The metadata key holding the ModelConfig JSON; with producer_name "livernet", it marks a file livernet wrote.
constexpr const char* kOnnxConfigKey = "livernet.model";
// The metadata key holding an ensemble's member count (absent for one model).
constexpr const char* kOnnxMembersKey = "livernet.members";

struct OnnxExportOptions {
  bool from_hu = false;  // the graph takes HU and windows it
  float window_level = 40.f, window_width = 400.f;
  double temperature = 1;  // probabilities = softmax(logits / temperature)
  // More metadata_props (key, value), after kOnnxConfigKey and the window/temperature keys.
  std::vector<std::pair<std::string, std::string>> metadata;
  std::string doc;  // the model's doc_string
};

// The ONNX file's bytes for `model` (on the CPU, f32). Throws Error when the model has no classifier or
// its forward pass runs an op with no ONNX counterpart here (named in the message).
std::string onnx_model_bytes(LesionClassifier& model, const OnnxExportOptions& options);
// The same for an ensemble of models of one configuration (one model: as above).
std::string onnx_model_bytes(const std::vector<LesionClassifier*>& members, const OnnxExportOptions& options);
// onnx_model_bytes written to `path` atomically.
void export_onnx(const std::vector<LesionClassifier*>& members, const OnnxExportOptions& options,
                 const std::string& path);

// What an ONNX file livernet wrote holds.
struct OnnxFile {
  std::int64_t ir_version = 0, opset = 0;
  std::string producer, producer_version;
  std::map<std::string, std::string> metadata;
  std::vector<std::string> inputs, outputs;  // graph input / output names
  std::vector<std::string> node_ops;         // op_type of every node, in order
  // Rebuilt from kOnnxConfigKey with every initializer loaded: one model, or an ensemble's members.
  std::vector<std::unique_ptr<LesionClassifier>> members;
};

// Reads back an ONNX file written by export_onnx: the model (or the ensemble's members) with its parameters
// and buffers bit for bit.
// Throws Error naming the file for a file that is not ONNX, is damaged or truncated, or was not written by
// livernet (no kOnnxConfigKey), and for an initializer that is missing or does not fit the model.
OnnxFile read_onnx(const std::string& path);
// The same from bytes in memory; `what` names them in errors.
OnnxFile parse_onnx(const std::string& bytes, const std::string& what);

}  // namespace livernet::io
