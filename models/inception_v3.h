// InceptionV3 (Keras and torchvision flavours), the paper's residual shortcuts and classifier head.
// Module names follow torchvision (Conv2d_1a_3x3, Mixed_5b.branch1x1.conv.weight, ...) under
// "backbone"; the classifier is "head". See docs/inception_v3.md and docs/model.md.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "layers/layers.h"
#include "models/config.h"

namespace livernet {

// y = block(x) + a * s(x), where s is the identity or a projection (1x1 conv + BN, after a 3x3/2 max
// pool when the block halves the resolution). a is a one-element tensor "alpha": a parameter when
// learnable, else a buffer.
class Shortcut : public Module {
 public:
  Shortcut(std::int64_t in_channels, std::int64_t out_channels, bool reduces, bool project, float a_init,
           bool learnable, float bn_eps, float bn_momentum);
  // The shortcut branch s(x).
  Tensor forward(const Tensor& x) override;
  Tensor combine(const Tensor& x, const Tensor& block_out);
  Tensor alpha;

 private:
  bool reduces_ = false;
  Conv2d* conv_ = nullptr;
  BatchNorm2d* bn_ = nullptr;
};

// Common base of the five Inception block types: branches + optional shortcut.
class InceptionBlock : public Module {
 public:
  InceptionBlock(std::string type_name, const ModelConfig& c)
      : Module(std::move(type_name)), flavour_(c.flavour), eps_(c.bn_eps), momentum_(c.bn_momentum) {}
  Tensor forward(const Tensor& x) override;
  void set_shortcut(std::shared_ptr<Shortcut> s) { shortcut_ = register_module("shortcut", std::move(s)); }
  Shortcut* shortcut() const { return shortcut_; }
  virtual std::int64_t out_channels() const = 0;
  virtual bool reduces() const { return false; }

 protected:
  virtual Tensor branches(const Tensor& x) = 0;
  ConvBnReLU* unit(const std::string& name, std::int64_t in, std::int64_t out, int kh, int kw, int stride = 1, int ph = 0,
                   int pw = 0);
  Flavour flavour_ = Flavour::keras;
  float eps_ = 1e-3f, momentum_ = 0.01f;
  kernels::Pool2dParams avg_pool_params() const {
    return kernels::Pool2dParams::make(3, 1, 1, /*count_include_pad=*/flavour_ == Flavour::torchvision);
  }

 private:
  Shortcut* shortcut_ = nullptr;
};

class InceptionBackbone : public Module {
 public:
  explicit InceptionBackbone(const ModelConfig& cfg);
  // [N, H, W, 3] (H, W >= 75) -> [N, h, w, 2048]. When `blocks` is given, appends (name, output) of the
  // stem and every mixed block.
  Tensor forward(const Tensor& x) override { return forward_blocks(x, nullptr); }
  Tensor forward_blocks(const Tensor& x, std::vector<std::pair<std::string, Tensor>>* blocks);
  // The stem alone: [N, H, W, 3] -> [N, h, w, 192] (five conv units and two max pools).
  Tensor stem(const Tensor& x);
  // The 94 conv units in Keras creation order (= the k of conv2d_k / batch_normalization_k), with
  // their torchvision prefixes ("Mixed_5b.branch1x1").
  std::vector<std::pair<std::string, ConvBnReLU*>> conv_units();
  // The mixed blocks in order with their names.
  const std::vector<std::pair<std::string, InceptionBlock*>>& blocks() const { return blocks_; }
  // The names of the blocks that carry a shortcut in this configuration.
  std::vector<std::string> shortcut_blocks() const;

 private:
  std::vector<std::pair<std::string, ConvBnReLU*>> stem_;
  std::vector<std::pair<std::string, InceptionBlock*>> blocks_;
};

// GAP features [N, 2048] -> logits [N, classes].
class ClassifierHead : public Module {
 public:
  explicit ClassifierHead(const ModelConfig& cfg);
  Tensor forward(const Tensor& features) override;
  std::vector<Dropout*> dropouts;

 private:
  std::vector<Module*> layers_;
};

// The whole classifier: optional grey -> 3 channel replication, backbone, global average pool, head.
class LesionClassifier : public Module {
 public:
  explicit LesionClassifier(const ModelConfig& cfg);
  // x: [N, H, W, 1 or 3] (1 channel is replicated to 3). Returns logits [N, classes] in f32.
  Tensor forward(const Tensor& x) override;
  // Pooled features [N, 2048] (in the compute dtype).
  Tensor features(const Tensor& x);
  // Runs the head on pooled features and returns f32 logits.
  Tensor classify(const Tensor& features);
  const ModelConfig& config() const { return cfg_; }
  // Activations run in this dtype (bf16/f16 autocast on the GPU; parameters stay f32).
  void set_compute_dtype(DType d) { compute_dtype_ = d; }
  DType compute_dtype() const { return compute_dtype_; }
  // Makes dropout masks a function of (seed, step): reproducible and resumable.
  void set_dropout_rng(std::uint64_t seed, std::uint64_t step);
  // Freezes/unfreezes by dotted prefix ("backbone", "backbone.Mixed_5b", "head"): parameters stop
  // requiring grad and batch norm keeps its running statistics. Throws for an unknown name.
  void freeze(const std::string& prefix, bool frozen = true);
  // Re-initialises the head (after loading a backbone-only file).
  void reset_head(std::uint64_t seed);
  InceptionBackbone* backbone;
  ClassifierHead* head = nullptr;

  // Input preparation shared by forward/features: checks the shape, replicates grey, casts.
  Tensor prepare_input(const Tensor& x) const;

 private:
  ModelConfig cfg_;
  DType compute_dtype_ = DType::f32;
};

}  // namespace livernet
