// From a CT patch in HU to the model's input, with optional augmentation, in one resampling pass:
// the output grid (size x size) is mapped through flips, a 90-degree rotation, a small rotation,
// scaling and translation onto the patch (bilinear, edge values beyond the border), then an HU shift and
// Gaussian noise are added, then the HU window maps to [-1, 1]. Every random number is Philox(seed,
// stream = epoch and sample), so a sample's augmentation does not depend on thread count or order.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "data/preprocess.h"

namespace livernet::data {

struct AugmentConfig {
  bool enabled = false;     // off by default, as in the author's code; on in our tuned config
  bool flips = true;        // horizontal and vertical, each with probability 1/2
  bool rot90 = true;        // 0, 90, 180 or 270 degrees
  float rotation_deg = 10;  // uniform in [-r, r]
  float scale = 0.1f;       // zoom uniform in [1 - s, 1 + s]
  float translate = 0.05f;  // shift uniform in [-t, t] of the patch size, each axis
  float hu_shift = 10;      // HU offset uniform in [-h, h]
  float noise_std = 5;      // Gaussian HU noise
};

struct InputConfig {
  HuWindow window;
  int size = 299;  // output height and width
};

// Writes size*size floats (the [size, size, 1] model input) for `hu` ([H, W] f32, CPU).
void make_input(const Tensor& hu, const InputConfig& in, const AugmentConfig& aug, std::uint64_t seed,
                std::uint64_t epoch, std::uint64_t sample, float* out);

}  // namespace livernet::data
