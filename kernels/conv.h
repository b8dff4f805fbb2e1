// Convolution (raw, no autograd): NHWC activations, OHWI weights ([Cout, kh, kw, Cin/groups]); the
// process-wide math settings of convolution and GEMM, and their FLOP counter. Argument checks here,
// then LN_DISPATCH to oneDNN (kernels/cpu/conv.cpp) or cuDNN (kernels/cuda/conv.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/math.h"

namespace livernet::kernels {

// ---- convolution ---------------------------------------------------------------------------------------
struct Conv2dParams {
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int dilation_h = 1, dilation_w = 1;
  int groups = 1;

  static Conv2dParams make(int stride, int pad_h, int pad_w) {
    Conv2dParams p;
    p.stride_h = p.stride_w = stride;
    p.pad_top = p.pad_bottom = pad_h;
    p.pad_left = p.pad_right = pad_w;
    return p;
  }
  bool symmetric() const { return pad_top == pad_bottom && pad_left == pad_right; }
  std::int64_t out_h(std::int64_t h, std::int64_t kh) const {
    return (h + pad_top + pad_bottom - dilation_h * (kh - 1) - 1) / stride_h + 1;
  }
  std::int64_t out_w(std::int64_t w, std::int64_t kw) const {
    return (w + pad_left + pad_right - dilation_w * (kw - 1) - 1) / stride_w + 1;
  }
  std::string str() const;
};

// The output shape of conv2d(x, w, p), after checking that x, w and p fit together.
Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dParams& p);
// y = conv(x, w) (+ bias); bias may be undefined.
Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p);
// dx from dy and w.
Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape, const Conv2dParams& p);
// dw (and dbias when requested) from dy and x. dw has w's dtype; dbias is f32.
void conv2d_backward_weights(const Tensor& dy, const Tensor& x, const Conv2dParams& p, Tensor& dw, Tensor* dbias);
// Allow TF32 tensor-core math for f32 convolutions and GEMMs on the GPU (off by default: f32 results
// then match the CPU to 1e-5). Process-wide.
void set_allow_tf32(bool allow);
bool allow_tf32();
// Deterministic algorithms only (cuDNN), no atomics in reductions. Process-wide.
void set_deterministic(bool on);
bool deterministic();

// Floating-point operations issued by conv2d (forward, backward data, backward weights) and gemm, counted
// as 2 per multiply-add, since the last reset (process-wide; for benchmarks' MFU figures).
std::uint64_t flop_count();
void reset_flop_count();
// Adds n to flop_count() (the GEMM front end counts its own).
void add_flop_count(std::uint64_t n);

}  // namespace livernet::kernels
