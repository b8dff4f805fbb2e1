#include "layers/layers.h"
#include "kernels/tensor_ops.h"

namespace livernet {

Conv2d::Conv2d(std::int64_t in_channels, std::int64_t out_channels, int kernel_h, int kernel_w,
               const kernels::Conv2dParams& p, bool with_bias)
    : Module("Conv2d"), params(p) {
  LN_CHECK(in_channels > 0 && out_channels > 0 && kernel_h > 0 && kernel_w > 0, "Conv2d: sizes must be positive");
  LN_CHECK(in_channels % p.groups == 0 && out_channels % p.groups == 0, "Conv2d: ", in_channels, " -> ", out_channels,
           " channels are not divisible by ", p.groups, " groups");
  weight = Tensor::empty(Shape{out_channels, kernel_h, kernel_w, in_channels / p.groups});
  init::kaiming_normal_(weight, init::next());
  register_parameter("weight", &weight);
  if (with_bias) {
    bias = zeros(Shape{out_channels});
    register_parameter("bias", &bias);
  }
}

Tensor Conv2d::forward(const Tensor& x) {
  // Under autocast the activations may be bf16/f16 while the master weights stay f32.
  return F::conv2d(x, F::cast(weight, x.dtype()), bias.defined() ? F::cast(bias, x.dtype()) : bias, params);
}

BatchNorm2d::BatchNorm2d(std::int64_t channels, float eps_, float momentum_, bool scale_, bool relu_)
    : Module("BatchNorm2d"), eps(eps_), momentum(momentum_), scale(scale_), relu(relu_) {
  LN_CHECK(channels > 0, "BatchNorm2d: channels must be positive");
  if (scale) {
    weight = ones(Shape{channels});
    register_parameter("weight", &weight);
  }
  bias = zeros(Shape{channels});
  register_parameter("bias", &bias);
  running_mean = zeros(Shape{channels});
  running_var = ones(Shape{channels});
  register_buffer("running_mean", &running_mean);
  register_buffer("running_var", &running_var);
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  const bool batch_stats = training() && !frozen();
  return F::batch_norm(x, weight, bias, running_mean, running_var, batch_stats, momentum, eps, relu);
}

ConvBnReLU::ConvBnReLU(std::int64_t in_channels, std::int64_t out_channels, int kernel_h, int kernel_w, int stride,
                       int pad_h, int pad_w, float bn_eps, bool bn_scale, float bn_momentum)
    : Module("ConvBnReLU") {
  conv = register_module("conv", std::make_shared<Conv2d>(in_channels, out_channels, kernel_h, kernel_w,
                                                           kernels::Conv2dParams::make(stride, pad_h, pad_w), false));
  bn = register_module("bn", std::make_shared<BatchNorm2d>(out_channels, bn_eps, bn_momentum, bn_scale, /*relu=*/true));
}

Tensor ConvBnReLU::forward(const Tensor& x) { return bn->forward(conv->forward(x)); }

Linear::Linear(std::int64_t in_features, std::int64_t out_features, bool with_bias) : Module("Linear") {
  LN_CHECK(in_features > 0 && out_features > 0, "Linear: sizes must be positive");
  weight = Tensor::empty(Shape{out_features, in_features});
  init::xavier_uniform_(weight, init::next());  // Keras' Dense default (the paper's code is Keras)
  register_parameter("weight", &weight);
  if (with_bias) {
    bias = zeros(Shape{out_features});
    register_parameter("bias", &bias);
  }
}

Tensor Linear::forward(const Tensor& x) {
  return F::linear(x, F::cast(weight, x.dtype()), bias.defined() ? F::cast(bias, x.dtype()) : bias);
}

Dropout::Dropout(float p_, std::uint64_t seed) : Module("Dropout"), p(p_), seed_(seed) {
  LN_CHECK(p >= 0.f && p < 1.f, "Dropout: probability must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) {
  if (!training() || p == 0.f) return x;
  return F::dropout(x, p, true, seed_, stream_++);
}

Module* Concat::add(const std::string& name, std::shared_ptr<Module> branch) {
  Module* m = register_module(name, std::move(branch));
  branches_.push_back(m);
  return m;
}

Tensor Concat::forward(const Tensor& x) {
  LN_CHECK(!branches_.empty(), "Concat: no branches");
  std::vector<Tensor> outs;
  outs.reserve(branches_.size());
  for (Module* b : branches_) outs.push_back(b->forward(x));
  return F::concat(outs, -1);
}

Residual::Residual(std::shared_ptr<Module> blk, float a_init, bool learnable) : Module("Residual") {
  block = register_module("block", std::move(blk));
  a = full(Shape{1}, a_init);
  if (learnable) register_parameter("alpha", &a);
  else register_buffer("alpha", &a);
}

Tensor Residual::forward(const Tensor& x) {
  Tensor y = block->forward(x);
  LN_CHECK(y.shape() == x.shape(), "Residual: the block maps ", x.shape().str(), " to ", y.shape().str(),
           "; an identity shortcut needs equal shapes");
  return F::add(y, F::scale_by(x, a));
}

Module* Sequential::add(const std::string& name, std::shared_ptr<Module> m) {
  Module* raw = register_module(name, std::move(m));
  layers_.push_back(raw);
  return raw;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (Module* m : layers_) y = m->forward(y);
  return y;
}

}  // namespace livernet
