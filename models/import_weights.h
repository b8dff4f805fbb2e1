// Importers for ImageNet InceptionV3 weights:
//  - Keras v0.5 files (inception_v3_weights_tf_dim_ordering_tf_kernels[_notop].h5), read with the HDF5
//    C API: conv2d_k / batch_normalization_k mapped by Keras creation order to torchvision names, HWIO
//    kernels transposed, gamma = 1 (keras flavour). The older, incompatible v0.2 files are refused.
//  - torchvision state_dicts saved to HDF5 (tools/pth_to_h5.py): one dataset per key.
// Both produce a livernet weight file (models/weights.h) with arch "inception_v3".
#pragma once

#include <string>
#include <vector>

#include "models/config.h"

namespace livernet::io {

struct ConvertReport {
  ModelConfig config;                 // of the written file
  int tensors = 0;                    // tensors written
  std::vector<std::string> warnings;  // e.g. an unknown md5, ignored AuxLogits tensors
};

// The md5 sums of the two official Keras v0.5 files.
constexpr const char* kKerasTopMd5 = "9a0d58056eeedaa3f26cb7ebd46da564";
constexpr const char* kKerasNotopMd5 = "bcbd6486424b2319ff4ef7d526e38f63";

ConvertReport convert_keras(const std::string& keras_h5, const std::string& output);
ConvertReport convert_torchvision(const std::string& state_dict_h5, const std::string& output);

}  // namespace livernet::io
