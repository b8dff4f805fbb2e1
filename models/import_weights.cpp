#include "models/import_weights.h"

#include <algorithm>
#include <set>

#include "autograd/autograd.h"
#include "io/hdf5.h"
#include "io/md5.h"
#include "kernels/tensor_ops.h"
#include "models/weights.h"
#include "models/inception_v3.h"

namespace livernet::io {

namespace {

ModelConfig imagenet_config(Flavour flavour, int classes) {
  ModelConfig c = ModelConfig::plain_inception_v3(flavour, classes);
  c.bn_momentum = flavour == Flavour::keras ? 0.01f : 0.1f;
  return c;
}

void assign(Tensor& dst, const Tensor& src, const std::string& file, const std::string& what) {
  LN_CHECK(dst.shape() == src.shape(), file, ": ", what, " has shape ", src.shape().str(), " but InceptionV3 expects ",
           dst.shape().str());
  NoGradGuard ng;
  copy_(dst, src);
}

// The dataset holding the weight whose name ends with `suffix` ("kernel:0") in Keras layer `layer`.
std::string keras_weight(const H5File& f, const std::string& layer, const std::string& suffix) {
  LN_CHECK(f.exists(layer), f.path(), ": no layer '", layer, "' (not an InceptionV3 weight file?)");
  const std::vector<std::string> names = f.read_string_list_attr(layer, "weight_names");
  for (const std::string& n : names)
    if (n.size() >= suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const std::string path = layer + "/" + n;
      LN_CHECK(f.is_dataset(path), f.path(), ": layer '", layer, "' lists '", n, "' but the dataset is missing");
      return path;
    }
  LN_FAIL(f.path(), ": layer '", layer, "' has no '", suffix, "' weight (its weights: ",
          names.empty() ? std::string("none") : names[0], names.size() > 1 ? ", ..." : "", ")");
}

}  // namespace

ConvertReport convert_keras(const std::string& path, const std::string& output) {
  H5File f = H5File::open(path);
  LN_CHECK(f.has_attr("/", "layer_names"), path, ": not a Keras weight file (no 'layer_names' attribute)");
  const std::vector<std::string> layers = f.read_string_list_attr("/", "layer_names");
  const std::set<std::string> layer_set(layers.begin(), layers.end());
  if (layer_set.count("convolution2d_1") || layer_set.count("batchnormalization_1"))
    LN_FAIL(path, ": this is a Keras-1 InceptionV3 file (v0.2 weights: conv with bias, BN with gamma, different "
                  "channel counts), which is incompatible; use inception_v3_weights_tf_dim_ordering_tf_kernels[_notop].h5 (v0.5)");
  // Standalone Keras numbers layers from 1 (conv2d_1); tf.keras / Keras 3 files from 0 (conv2d, conv2d_1, ...).
  const bool zero_based = layer_set.count("conv2d") && !layer_set.count("conv2d_94");
  auto conv_name = [&](int k) { return zero_based ? (k == 1 ? std::string("conv2d") : str_cat("conv2d_", k - 1)) : str_cat("conv2d_", k); };
  auto bn_name = [&](int k) {
    return zero_based ? (k == 1 ? std::string("batch_normalization") : str_cat("batch_normalization_", k - 1))
                      : str_cat("batch_normalization_", k);
  };
  int convs = 0;
  for (const auto& l : layers) convs += l.rfind("conv2d", 0) == 0;
  LN_CHECK(convs == 94, path, ": ", convs, " conv2d layers where InceptionV3 has 94 (a different model?)");
  // v0.2-style layers: conv with a bias or BN with a gamma.
  LN_CHECK(f.read_string_list_attr(conv_name(1), "weight_names").size() == 1, path,
           ": conv layers carry a bias: an incompatible (v0.2 / Keras-1) InceptionV3 file");
  for (const std::string& w : f.read_string_list_attr(bn_name(1), "weight_names"))
    LN_CHECK(w.find("gamma") == std::string::npos, path,
             ": batch norm has a gamma: not the Keras v0.5 InceptionV3 (BN scale=False) weights");

  ConvertReport report;
  const std::string md5 = md5_file(path);
  const bool top = layer_set.count("predictions") > 0;
  if (md5 != kKerasTopMd5 && md5 != kKerasNotopMd5)
    report.warnings.push_back(str_cat("md5 ", md5, " is not one of the two official Keras v0.5 files (",
                                      kKerasTopMd5, ", ", kKerasNotopMd5, "); converting anyway"));
  int classes = 0;
  if (top) {
    const Tensor k = f.read(keras_weight(f, "predictions", "kernel:0"), DType::f32);
    LN_CHECK(k.dim() == 2 && k.size(0) == 2048, path, ": predictions kernel has shape ", k.shape().str(),
             ", expected [2048, classes]");
    classes = static_cast<int>(k.size(1));
  }
  report.config = imagenet_config(Flavour::keras, classes);
  LesionClassifier model(report.config);
  auto units = model.backbone->conv_units();
  for (int k = 1; k <= 94; ++k) {
    ConvBnReLU* u = units[k - 1].second;
    const std::string what = str_cat(conv_name(k), " (", units[k - 1].first, ")");
    const Tensor hwio = f.read(keras_weight(f, conv_name(k), "kernel:0"), DType::f32);
    LN_CHECK(hwio.dim() == 4, path, ": ", what, " kernel is not 4-D");
    assign(u->conv->weight, permute(hwio, {3, 0, 1, 2}), path, what + " kernel (as OHWI)");
    const std::string bn = bn_name(k);
    assign(u->bn->bias, f.read(keras_weight(f, bn, "beta:0"), DType::f32), path, bn + " beta");
    assign(u->bn->running_mean, f.read(keras_weight(f, bn, "moving_mean:0"), DType::f32), path, bn + " moving_mean");
    assign(u->bn->running_var, f.read(keras_weight(f, bn, "moving_variance:0"), DType::f32), path, bn + " moving_variance");
  }
  if (top) {
    auto* fc = static_cast<Linear*>(model.find("head.fc"));
    assign(fc->weight, permute(f.read(keras_weight(f, "predictions", "kernel:0"), DType::f32), {1, 0}), path,
           "predictions kernel (transposed)");
    assign(fc->bias, f.read(keras_weight(f, "predictions", "bias:0"), DType::f32), path, "predictions bias");
  }
  save_weights(model, report.config, output);
  report.tensors = static_cast<int>(model.named_state().size());
  return report;
}

ConvertReport convert_torchvision(const std::string& path, const std::string& output) {
  H5File f = H5File::open(path);
  // Keys may be flat dataset names with dots (tools/pth_to_h5.py) or nested groups.
  std::set<std::string> keys;
  for (std::string d : f.datasets()) {
    std::replace(d.begin(), d.end(), '/', '.');
    keys.insert(d);
  }
  LN_CHECK(keys.count("Conv2d_1a_3x3.conv.weight"), path,
           ": not a torchvision InceptionV3 state_dict (no Conv2d_1a_3x3.conv.weight); make one with tools/pth_to_h5.py");
  auto read_key = [&](const std::string& key) {
    if (f.is_dataset(key)) return f.read(key, DType::f32);
    return f.read(dataset_path(key), DType::f32);
  };
  ConvertReport report;
  int classes = 0;
  if (keys.count("fc.weight")) {
    const H5DatasetInfo inf = f.is_dataset("fc.weight") ? f.info("fc.weight") : f.info("fc/weight");
    LN_CHECK(inf.shape.size() == 2 && inf.shape[1] == 2048, path, ": fc.weight has shape ", inf.shape.str(),
             ", expected [classes, 2048]");
    classes = static_cast<int>(inf.shape[0]);
  }
  report.config = imagenet_config(Flavour::torchvision, classes);
  LesionClassifier model(report.config);
  std::set<std::string> used;
  for (auto& named : model.named_state()) {
    const std::string key = named.name.substr(named.name.find('.') + 1);  // drop "backbone." / "head."
    LN_CHECK(keys.count(key), path, ": missing '", key, "' (", named.tensor->shape().str(), ")");
    used.insert(key);
    const Tensor v = read_key(key);
    assign(*named.tensor, from_file_layout(v), path, key);
  }
  int aux = 0, tracked = 0;
  for (const std::string& k : keys) {
    if (used.count(k)) continue;
    if (k.rfind("AuxLogits.", 0) == 0) {
      ++aux;
    } else if (k.size() > 20 && k.compare(k.size() - 20, 20, ".num_batches_tracked") == 0) {
      ++tracked;
    } else {
      LN_FAIL(path, ": unexpected tensor '", k, "' (not part of torchvision's InceptionV3)");
    }
  }
  if (aux) report.warnings.push_back(str_cat("ignored ", aux, " AuxLogits tensors (training-only auxiliary head)"));
  (void)tracked;  // BN counters: not needed, present or not
  save_weights(model, report.config, output);
  report.tensors = static_cast<int>(model.named_state().size());
  return report;
}

}  // namespace livernet::io
