#include "models/inception_v3.h"
#include "kernels/tensor_ops.h"

namespace livernet {

using kernels::Pool2dParams;

// ---- shortcut ---------------------------------------------------------------------------------------

Shortcut::Shortcut(std::int64_t in_channels, std::int64_t out_channels, bool reduces, bool project, float a_init,
                   bool learnable, float bn_eps, float bn_momentum)
    : Module("Shortcut"), reduces_(reduces) {
  LN_CHECK(project || (in_channels == out_channels && !reduces), "Shortcut: an identity shortcut needs equal shapes");
  alpha = full(Shape{1}, a_init);
  if (learnable) register_parameter("alpha", &alpha);
  else register_buffer("alpha", &alpha);
  if (project) {
    conv_ = register_module("conv", std::make_shared<Conv2d>(in_channels, out_channels, 1, 1));
    bn_ = register_module("bn", std::make_shared<BatchNorm2d>(out_channels, bn_eps, bn_momentum, true, false));
  }
}

Tensor Shortcut::forward(const Tensor& x) {
  if (!conv_) return x;
  const Tensor in = reduces_ ? F::max_pool2d(x, Pool2dParams::make(3, 2, 0)) : x;
  return bn_->forward(conv_->forward(in));
}

Tensor Shortcut::combine(const Tensor& x, const Tensor& block_out) {
  const Tensor s = forward(x);
  LN_CHECK(s.shape() == block_out.shape(), "Shortcut: shortcut ", s.shape().str(), " does not match the block output ",
           block_out.shape().str());
  return F::add(block_out, F::scale_by(s, alpha));
}

// ---- blocks --------------------------------------------------------------------------------------------

Tensor InceptionBlock::forward(const Tensor& x) {
  Tensor y = branches(x);
  return shortcut_ ? shortcut_->combine(x, y) : y;
}

ConvBnReLU* InceptionBlock::unit(const std::string& name, std::int64_t in, std::int64_t out, int kh, int kw,
                                 int stride, int ph, int pw) {
  return register_module(name, std::make_shared<ConvBnReLU>(in, out, kh, kw, stride, ph, pw, eps_, flavour_ == Flavour::torchvision,
                                                            momentum_));
}

namespace {


class InceptionA final : public InceptionBlock {
 public:
  InceptionA(const ModelConfig& c, std::int64_t in, std::int64_t pool_features) : InceptionBlock("InceptionA", c) {
    b1 = unit("branch1x1", in, 64, 1, 1);
    b5_1 = unit("branch5x5_1", in, 48, 1, 1);
    b5_2 = unit("branch5x5_2", 48, 64, 5, 5, 1, 2, 2);
    d1 = unit("branch3x3dbl_1", in, 64, 1, 1);
    d2 = unit("branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
    d3 = unit("branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1);
    pool = unit("branch_pool", in, pool_features, 1, 1);
    out_ = 224 + pool_features;
  }
  std::int64_t out_channels() const override { return out_; }

 protected:
  Tensor branches(const Tensor& x) override {
    return F::concat({(*b1)(x), (*b5_2)((*b5_1)(x)), (*d3)((*d2)((*d1)(x))), (*pool)(F::avg_pool2d(x, avg_pool_params()))},
                     -1);
  }

 private:
  ConvBnReLU *b1, *b5_1, *b5_2, *d1, *d2, *d3, *pool;
  std::int64_t out_;
};

class InceptionB final : public InceptionBlock {
 public:
  InceptionB(const ModelConfig& c, std::int64_t in) : InceptionBlock("InceptionB", c), in_(in) {
    b3 = unit("branch3x3", in, 384, 3, 3, 2);
    d1 = unit("branch3x3dbl_1", in, 64, 1, 1);
    d2 = unit("branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
    d3 = unit("branch3x3dbl_3", 96, 96, 3, 3, 2);
  }
  std::int64_t out_channels() const override { return 384 + 96 + in_; }
  bool reduces() const override { return true; }

 protected:
  Tensor branches(const Tensor& x) override {
    return F::concat({(*b3)(x), (*d3)((*d2)((*d1)(x))), F::max_pool2d(x, Pool2dParams::make(3, 2, 0))}, -1);
  }

 private:
  ConvBnReLU *b3, *d1, *d2, *d3;
  std::int64_t in_;
};

class InceptionC final : public InceptionBlock {
 public:
  InceptionC(const ModelConfig& c, std::int64_t in, std::int64_t c7) : InceptionBlock("InceptionC", c) {
    b1 = unit("branch1x1", in, 192, 1, 1);
    s1 = unit("branch7x7_1", in, c7, 1, 1);
    s2 = unit("branch7x7_2", c7, c7, 1, 7, 1, 0, 3);
    s3 = unit("branch7x7_3", c7, 192, 7, 1, 1, 3, 0);
    d1 = unit("branch7x7dbl_1", in, c7, 1, 1);
    d2 = unit("branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0);
    d3 = unit("branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3);
    d4 = unit("branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0);
    d5 = unit("branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3);
    pool = unit("branch_pool", in, 192, 1, 1);
  }
  std::int64_t out_channels() const override { return 768; }

 protected:
  Tensor branches(const Tensor& x) override {
    return F::concat({(*b1)(x), (*s3)((*s2)((*s1)(x))), (*d5)((*d4)((*d3)((*d2)((*d1)(x))))),
                      (*pool)(F::avg_pool2d(x, avg_pool_params()))},
                     -1);
  }

 private:
  ConvBnReLU *b1, *s1, *s2, *s3, *d1, *d2, *d3, *d4, *d5, *pool;
};

class InceptionD final : public InceptionBlock {
 public:
  InceptionD(const ModelConfig& c, std::int64_t in) : InceptionBlock("InceptionD", c), in_(in) {
    a1 = unit("branch3x3_1", in, 192, 1, 1);
    a2 = unit("branch3x3_2", 192, 320, 3, 3, 2);
    b1 = unit("branch7x7x3_1", in, 192, 1, 1);
    b2 = unit("branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3);
    b3 = unit("branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0);
    b4 = unit("branch7x7x3_4", 192, 192, 3, 3, 2);
  }
  std::int64_t out_channels() const override { return 320 + 192 + in_; }
  bool reduces() const override { return true; }

 protected:
  Tensor branches(const Tensor& x) override {
    return F::concat({(*a2)((*a1)(x)), (*b4)((*b3)((*b2)((*b1)(x)))), F::max_pool2d(x, Pool2dParams::make(3, 2, 0))}, -1);
  }

 private:
  ConvBnReLU *a1, *a2, *b1, *b2, *b3, *b4;
  std::int64_t in_;
};

class InceptionE final : public InceptionBlock {
 public:
  InceptionE(const ModelConfig& c, std::int64_t in) : InceptionBlock("InceptionE", c) {
    b1 = unit("branch1x1", in, 320, 1, 1);
    s1 = unit("branch3x3_1", in, 384, 1, 1);
    s2a = unit("branch3x3_2a", 384, 384, 1, 3, 1, 0, 1);
    s2b = unit("branch3x3_2b", 384, 384, 3, 1, 1, 1, 0);
    d1 = unit("branch3x3dbl_1", in, 448, 1, 1);
    d2 = unit("branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1);
    d3a = unit("branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1);
    d3b = unit("branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0);
    pool = unit("branch_pool", in, 192, 1, 1);
  }
  std::int64_t out_channels() const override { return 2048; }

 protected:
  Tensor branches(const Tensor& x) override {
    const Tensor s = (*s1)(x);
    const Tensor d = (*d2)((*d1)(x));
    return F::concat({(*b1)(x), (*s2a)(s), (*s2b)(s), (*d3a)(d), (*d3b)(d), (*pool)(F::avg_pool2d(x, avg_pool_params()))},
                     -1);
  }

 private:
  ConvBnReLU *b1, *s1, *s2a, *s2b, *d1, *d2, *d3a, *d3b, *pool;
};

}  // namespace

// ---- backbone ------------------------------------------------------------------------------------------

InceptionBackbone::InceptionBackbone(const ModelConfig& c) : Module("InceptionV3") {
  const bool scale = c.flavour == Flavour::torchvision;
  auto stem = [&](const std::string& name, std::int64_t in, std::int64_t out, int k, int stride, int pad) {
    stem_.emplace_back(name, register_module(name, std::make_shared<ConvBnReLU>(in, out, k, k, stride, pad, pad, c.bn_eps,
                                                                                scale, c.bn_momentum)));
  };
  stem("Conv2d_1a_3x3", 3, 32, 3, 2, 0);
  stem("Conv2d_2a_3x3", 32, 32, 3, 1, 0);
  stem("Conv2d_2b_3x3", 32, 64, 3, 1, 1);
  stem("Conv2d_3b_1x1", 64, 80, 1, 1, 0);
  stem("Conv2d_4a_3x3", 80, 192, 3, 1, 0);
  auto block = [&](const std::string& name, std::shared_ptr<InceptionBlock> b) {
    blocks_.emplace_back(name, register_module(name, std::move(b)));
  };
  block("Mixed_5b", std::make_shared<InceptionA>(c, 192, 32));
  block("Mixed_5c", std::make_shared<InceptionA>(c, 256, 64));
  block("Mixed_5d", std::make_shared<InceptionA>(c, 288, 64));
  block("Mixed_6a", std::make_shared<InceptionB>(c, 288));
  block("Mixed_6b", std::make_shared<InceptionC>(c, 768, 128));
  block("Mixed_6c", std::make_shared<InceptionC>(c, 768, 160));
  block("Mixed_6d", std::make_shared<InceptionC>(c, 768, 160));
  block("Mixed_6e", std::make_shared<InceptionC>(c, 768, 192));
  block("Mixed_7a", std::make_shared<InceptionD>(c, 768));
  block("Mixed_7b", std::make_shared<InceptionE>(c, 1280));
  block("Mixed_7c", std::make_shared<InceptionE>(c, 2048));

  if (c.arch == "paper" && c.residual != ResidualMode::none) {
    std::int64_t in = 192;
    for (auto& [name, b] : blocks_) {
      const std::int64_t out = b->out_channels();
      const bool same = in == out && !b->reduces();
      if (same || c.residual == ResidualMode::projection)
        b->set_shortcut(std::make_shared<Shortcut>(in, out, b->reduces(), !same, c.residual_init, c.residual_learnable,
                                                   c.bn_eps, c.bn_momentum));
      in = out;
    }
  }
}

Tensor InceptionBackbone::stem(const Tensor& x) {
  LN_CHECK(x.dim() == 4 && x.size(3) == 3, "InceptionV3: input must be [N, H, W, 3], got ", x.shape().str());
  LN_CHECK(x.size(1) >= 75 && x.size(2) >= 75, "InceptionV3: input ", x.size(1), "x", x.size(2),
           " is smaller than the minimum 75x75");
  Tensor h = x;
  for (std::size_t i = 0; i < stem_.size(); ++i) {
    h = stem_[i].second->forward(h);
    if (i == 2 || i == 4) h = F::max_pool2d(h, Pool2dParams::make(3, 2, 0));  // maxpool1, maxpool2
  }
  return h;
}

Tensor InceptionBackbone::forward_blocks(const Tensor& x, std::vector<std::pair<std::string, Tensor>>* outs) {
  Tensor h = stem(x);
  if (outs) outs->emplace_back("stem", h);
  for (auto& [name, b] : blocks_) {
    h = b->forward(h);
    if (outs) outs->emplace_back(name, h);
  }
  return h;
}

std::vector<std::pair<std::string, ConvBnReLU*>> InceptionBackbone::conv_units() {
  std::vector<std::pair<std::string, ConvBnReLU*>> out;
  for (auto& [name, m] : named_modules())
    if (m->type_name() == "ConvBnReLU") out.emplace_back(name, static_cast<ConvBnReLU*>(m));
  return out;
}

std::vector<std::string> InceptionBackbone::shortcut_blocks() const {
  std::vector<std::string> out;
  for (auto& [name, b] : blocks_)
    if (b->shortcut()) out.push_back(name);
  return out;
}

// ---- head ----------------------------------------------------------------------------------------------

ClassifierHead::ClassifierHead(const ModelConfig& c) : Module("ClassifierHead") {
  std::int64_t in = 2048;
  if (c.arch == "inception_v3") {
    if (c.fc_dropout > 0.f) {
      dropouts.push_back(register_module("dropout", std::make_shared<Dropout>(c.fc_dropout)));
      layers_.push_back(dropouts.back());
    }
  } else {
    for (std::size_t i = 0; i < c.head_hidden.size(); ++i) {
      const std::string k = std::to_string(i + 1);
      layers_.push_back(register_module("fc" + k, std::make_shared<Linear>(in, c.head_hidden[i])));
      layers_.push_back(register_module("relu" + k, std::make_shared<ReLU>()));
      if (c.head_dropout > 0.f) {
        dropouts.push_back(register_module("dropout" + k, std::make_shared<Dropout>(c.head_dropout)));
        layers_.push_back(dropouts.back());
      }
      in = c.head_hidden[i];
    }
  }
  layers_.push_back(register_module("fc", std::make_shared<Linear>(in, c.num_classes)));
}

Tensor ClassifierHead::forward(const Tensor& features) {
  Tensor h = features;
  for (Module* m : layers_) h = m->forward(h);
  return h;
}

// ---- classifier ------------------------------------------------------------------------------------------

LesionClassifier::LesionClassifier(const ModelConfig& cfg) : Module("LesionClassifier"), cfg_(cfg) {
  cfg_.validate();
  backbone = register_module("backbone", std::make_shared<InceptionBackbone>(cfg_));
  if (cfg_.num_classes > 0) head = register_module("head", std::make_shared<ClassifierHead>(cfg_));
}

Tensor LesionClassifier::prepare_input(const Tensor& x) const {
  LN_CHECK(x.defined() && x.dim() == 4 && (x.size(3) == 1 || x.size(3) == 3),
           "model input must be [N, H, W, 1] (grey) or [N, H, W, 3], got ", x.defined() ? x.shape().str() : "nothing");
  Tensor in = F::cast(x, compute_dtype_);
  if (in.size(3) == 1) in = F::concat({in, in, in}, -1);  // grey replicated to three channels
  return in;
}

Tensor LesionClassifier::features(const Tensor& x) { return F::global_avg_pool(backbone->forward(prepare_input(x))); }

Tensor LesionClassifier::classify(const Tensor& features) {
  LN_CHECK(head, "the model has no classifier (num_classes = 0)");
  return F::cast(head->forward(features), DType::f32);
}

Tensor LesionClassifier::forward(const Tensor& x) { return classify(features(x)); }

void LesionClassifier::set_dropout_rng(std::uint64_t seed, std::uint64_t step) {
  if (!head) return;
  for (std::size_t i = 0; i < head->dropouts.size(); ++i) head->dropouts[i]->set_rng(seed, step * 64 + i);
}

void LesionClassifier::freeze(const std::string& prefix, bool frozen) {
  Module* m = find(prefix);
  LN_CHECK(m, "freeze: no module named '", prefix, "' (try backbone, head, backbone.Mixed_6e, ...)");
  m->set_frozen(frozen);
}

void LesionClassifier::reset_head(std::uint64_t seed) {
  if (!head) return;
  init::set_seed(seed);
  for (auto& p : head->named_parameters()) {
    if (p.tensor->dim() == 2) init::kaiming_normal_(*p.tensor, init::next());
    else init::zeros_(*p.tensor);
  }
}

}  // namespace livernet
