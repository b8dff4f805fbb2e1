// The layers InceptionV3 training needs. Tensors are NHWC; conv weights OHWI [Cout, kh, kw, Cin/groups];
// linear weights [out, in]. Parameter and buffer names follow PyTorch (weight, bias, running_mean,
// running_var), so that a torchvision state_dict maps one to one.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "layers/functional.h"
#include "layers/init.h"
#include "layers/module.h"

namespace livernet {

class Conv2d : public Module {
 public:
  // Weights He-normal (fan_in, ReLU gain), bias zero; models re-initialise as they need.
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, int kernel_h, int kernel_w,
         const kernels::Conv2dParams& params = {}, bool bias = false);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  kernels::Conv2dParams params;
};

class BatchNorm2d : public Module {
 public:
  // scale = false gives Keras' BN without gamma. momentum is the weight of the new batch (PyTorch's
  // convention; Keras' 0.99 is 0.01 here). relu fuses a ReLU into the same pass.
  BatchNorm2d(std::int64_t channels, float eps = 1e-5f, float momentum = 0.1f, bool scale = true, bool relu = false);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias, running_mean, running_var;
  float eps, momentum;
  bool scale, relu;
};

// conv (no bias) -> batch norm -> ReLU (fused): InceptionV3's BasicConv2d, with children "conv" and "bn".
class ConvBnReLU : public Module {
 public:
  ConvBnReLU(std::int64_t in_channels, std::int64_t out_channels, int kernel_h, int kernel_w, int stride = 1,
             int pad_h = 0, int pad_w = 0, float bn_eps = 1e-3f, bool bn_scale = true, float bn_momentum = 0.1f);
  Tensor forward(const Tensor& x) override;
  Conv2d* conv;
  BatchNorm2d* bn;
};

// Weights Glorot-uniform (Keras' default), bias zero.
class Linear : public Module {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
};

class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& x) override { return F::relu(x); }
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const kernels::Pool2dParams& p) : Module("MaxPool2d"), params(p) {}
  Tensor forward(const Tensor& x) override { return F::max_pool2d(x, params); }
  kernels::Pool2dParams params;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const kernels::Pool2dParams& p) : Module("AvgPool2d"), params(p) {}
  Tensor forward(const Tensor& x) override { return F::avg_pool2d(x, params); }
  kernels::Pool2dParams params;
};

// [N, H, W, C] -> [N, C]
class GlobalAvgPool : public Module {
 public:
  GlobalAvgPool() : Module("GlobalAvgPool") {}
  Tensor forward(const Tensor& x) override { return F::global_avg_pool(x); }
};

// Inverted dropout. Each training-mode call draws a fresh mask from Philox (seed, stream + call count);
// set_rng() makes masks reproducible (e.g. per epoch and step, so a resumed run draws the same ones).
class Dropout : public Module {
 public:
  explicit Dropout(float p, std::uint64_t seed = 0);
  Tensor forward(const Tensor& x) override;
  void set_rng(std::uint64_t seed, std::uint64_t stream) {
    seed_ = seed;
    stream_ = stream;
  }
  float p;

 private:
  std::uint64_t seed_, stream_ = 0;
};

// Runs every child on the same input and concatenates the results along the channels.
class Concat : public Module {
 public:
  Concat() : Module("Concat") {}
  Module* add(const std::string& name, std::shared_ptr<Module> branch);
  Tensor forward(const Tensor& x) override;

 private:
  std::vector<Module*> branches_;
};

// y = block(x) + a * x, with a fixed (a buffer) or learnable (a parameter), a one-element f32 tensor.
class Residual : public Module {
 public:
  Residual(std::shared_ptr<Module> block, float a_init = 1.f, bool learnable = false);
  Tensor forward(const Tensor& x) override;
  Module* block;
  Tensor a;
};

class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  Module* add(const std::string& name, std::shared_ptr<Module> m);
  Tensor forward(const Tensor& x) override;

 private:
  std::vector<Module*> layers_;
};

}  // namespace livernet
