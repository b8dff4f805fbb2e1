// Preprocessing of CT patches for the model (host side):
//   bilinear resize to the model's input size, in HU -> HU window (level, width) -> clip -> scale to [-1, 1]
// (the order of data::make_input, which training and evaluation use; tools/predict follows it).
// The defaults (level 40, width 400: the abdominal soft-tissue window) are documented in docs/model.md.
#pragma once

#include "core/tensor.h"

namespace livernet::data {

struct HuWindow {
  float level = 40.f;
  float width = 400.f;
};

// Values in HU -> [-1, 1] through the window (f32, any shape).
Tensor apply_window(const Tensor& hu, const HuWindow& w);
// 8-bit image values 0..255 -> [-1, 1] (Keras' x / 127.5 - 1).
Tensor scale_8bit(const Tensor& x);
// Bilinear resize of [N, H, W, C] (or [H, W, C]) to out_h x out_w, half-pixel centres
// (torch.nn.functional.interpolate(mode="bilinear", align_corners=False), no antialiasing).
Tensor resize_bilinear(const Tensor& x, std::int64_t out_h, std::int64_t out_w);

}  // namespace livernet::data
