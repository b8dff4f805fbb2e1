// Grad-CAM (Selvaraju et al. 2017) with livernet's own autograd: the gradient of a class logit with
// respect to an Inception block's output, averaged over space, weights that block's channels; their
// ReLU'd sum, upsampled to the input, shows where the network looked.
#pragma once

#include <string>

#include "models/inception_v3.h"

namespace livernet::train {

struct GradCam {
  Tensor heat;        // [size, size] f32 in [0, 1] (CPU)
  std::string block;  // the block it was computed on
};

// `input` is one model input [1, S, S, C]. `block` empty = the last block whose map is at least 4x4 at
// this input size (Mixed_7c at 299x299).
GradCam grad_cam(LesionClassifier& model, const Tensor& input, int target_class, const std::string& block = "");

}  // namespace livernet::train
