// Front end of convolution; the math settings and the FLOP counter.
#include "kernels/conv.h"

#include <atomic>

#include "kernels/backend.h"
#include "kernels/checks.h"
#include "kernels/tensor_ops.h"

namespace livernet::kernels {

namespace {

std::atomic<bool> g_allow_tf32{false};
std::atomic<bool> g_deterministic{false};
std::atomic<std::uint64_t> g_flops{0};

void count_conv_flops(const Shape& y, const Shape& w) {
  g_flops += 2ull * static_cast<std::uint64_t>(y.numel()) * static_cast<std::uint64_t>(w[1] * w[2] * w[3]);
}

}  // namespace

std::uint64_t flop_count() { return g_flops; }
void reset_flop_count() { g_flops = 0; }
void set_allow_tf32(bool allow) { g_allow_tf32 = allow; }
bool allow_tf32() { return g_allow_tf32; }
void set_deterministic(bool on) { g_deterministic = on; }
bool deterministic() { return g_deterministic; }
void add_flop_count(std::uint64_t n) { g_flops += n; }

// ---- convolution -----------------------------------------------------------------------------------------

std::string Conv2dParams::str() const {
  return str_cat("stride ", stride_h, "x", stride_w, ", padding (t", pad_top, " b", pad_bottom, " l", pad_left, " r",
                 pad_right, "), dilation ", dilation_h, "x", dilation_w, ", groups ", groups);
}

Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dParams& p) {
  LN_CHECK(x.size() == 4, "conv2d: input must be [N, H, W, C], got ", x.str());
  LN_CHECK(w.size() == 4, "conv2d: weight must be [Cout, kh, kw, Cin/groups] (OHWI), got ", w.str());
  LN_CHECK(p.groups >= 1 && p.stride_h >= 1 && p.stride_w >= 1 && p.dilation_h >= 1 && p.dilation_w >= 1,
           "conv2d: invalid parameters: ", p.str());
  LN_CHECK(p.pad_top >= 0 && p.pad_bottom >= 0 && p.pad_left >= 0 && p.pad_right >= 0, "conv2d: negative padding: ",
           p.str());
  LN_CHECK(x[3] == w[3] * p.groups, "conv2d: input has ", x[3], " channels but the weight ", w.str(), " with ",
           p.groups, " group(s) expects ", w[3] * p.groups);
  LN_CHECK(w[0] % p.groups == 0, "conv2d: ", w[0], " output channels are not divisible by ", p.groups, " groups");
  const std::int64_t ho = p.out_h(x[1], w[1]), wo = p.out_w(x[2], w[2]);
  LN_CHECK(ho >= 1 && wo >= 1, "conv2d: input ", x.str(), " is too small for kernel ", w[1], "x", w[2], " with ",
           p.str());
  return Shape{x[0], ho, wo, w[0]};
}

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  check_float("conv2d", x, "input");
  check_float("conv2d", w, "weight");
  check_same_device("conv2d", x, w);
  LN_CHECK(x.dtype() == w.dtype(), "conv2d: input is ", dtype_name(x.dtype()), " but weight is ", dtype_name(w.dtype()));
  const Shape ys = conv2d_output_shape(x.shape(), w.shape(), p);
  if (bias.defined()) {
    check_same_device("conv2d (bias)", x, bias);
    LN_CHECK(bias.dim() == 1 && bias.size(0) == w.size(0), "conv2d: bias must have shape [", w.size(0), "], got ",
             bias.shape().str());
  }
  Tensor y = Tensor::empty(ys, x.dtype(), x.device());
  if (y.numel() == 0) return y;
  count_conv_flops(ys, w.shape());
  LN_DISPATCH(x.device(), conv2d_forward, x, w, bias, p, y);
  return y;
}

Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape, const Conv2dParams& p) {
  check_float("conv2d backward", dy, "output gradient");
  const Shape ys = conv2d_output_shape(x_shape, w.shape(), p);
  LN_CHECK(dy.shape() == ys, "conv2d backward: output gradient ", dy.shape().str(), " does not match the output ",
           ys.str());
  check_same_device("conv2d backward", dy, w);
  Tensor dx = Tensor::empty(x_shape, dy.dtype(), dy.device());
  count_conv_flops(ys, w.shape());
  LN_DISPATCH(dy.device(), conv2d_backward_data, dy, w.dtype() == dy.dtype() ? w : to_dtype(w, dy.dtype()), p, dx);
  return dx;
}

void conv2d_backward_weights(const Tensor& dy, const Tensor& x, const Conv2dParams& p, Tensor& dw, Tensor* dbias) {
  check_float("conv2d backward", dy, "output gradient");
  check_float("conv2d backward", x, "input");
  const Shape ys = conv2d_output_shape(x.shape(), dw.shape(), p);
  LN_CHECK(dy.shape() == ys, "conv2d backward: output gradient ", dy.shape().str(), " does not match the output ",
           ys.str());
  check_same_device("conv2d backward", dy, x);
  check_same_device("conv2d backward", dy, dw);
  count_conv_flops(ys, dw.shape());
  if (dw.dtype() == dy.dtype()) {
    LN_DISPATCH(dy.device(), conv2d_backward_weights, dy, x.dtype() == dy.dtype() ? x : to_dtype(x, dy.dtype()), p, dw);
  } else {
    Tensor tmp = Tensor::empty(dw.shape(), dy.dtype(), dy.device());
    LN_DISPATCH(dy.device(), conv2d_backward_weights, dy, x.dtype() == dy.dtype() ? x : to_dtype(x, dy.dtype()), p, tmp);
    copy_(dw, tmp);
  }
  if (dbias) *dbias = sum(dy, {0, 1, 2});
}

}  // namespace livernet::kernels
