// Layers and modules: parameter names, modes, freezing, moving between devices, initialisers, and a
// small InceptionV3-like network (ConvBnReLU + pools + concat + residual + linear) whose gradients match
// finite differences end to end and whose loss falls under a few SGD steps.
#include <gtest/gtest.h>

#include <cmath>

#include "op_harness.h"
#include "kernels/tensor_ops.h"
#include "layers/layers.h"

using namespace livernet;
using namespace livernet::testing;

namespace {

// A miniature Inception block: two branches concatenated, wrapped in a residual shortcut.
class MiniBlock : public Module {
 public:
  explicit MiniBlock(std::int64_t c) : Module("MiniBlock") {
    auto concat = std::make_shared<Concat>();
    concat->add("branch1x1", std::make_shared<ConvBnReLU>(c, c / 2, 1, 1));
    auto dbl = std::make_shared<Sequential>();
    dbl->add("a", std::make_shared<ConvBnReLU>(c, c / 2, 1, 3, 1, 0, 1));
    dbl->add("b", std::make_shared<ConvBnReLU>(c / 2, c / 2, 3, 1, 1, 1, 0));
    concat->add("branch1x3_3x1", dbl);
    residual = register_module("res", std::make_shared<Residual>(concat, 0.5f, /*learnable=*/true));
  }
  Tensor forward(const Tensor& x) override { return residual->forward(x); }
  Residual* residual;
};

class MiniNet : public Module {
 public:
  explicit MiniNet(int classes) : Module("MiniNet") {
    stem = register_module("stem", std::make_shared<ConvBnReLU>(1, 8, 3, 3, 2));
    pool = register_module("pool", std::make_shared<MaxPool2d>(kernels::Pool2dParams::make(3, 2, 0)));
    block = register_module("block", std::make_shared<MiniBlock>(8));
    avg = register_module("avg", std::make_shared<AvgPool2d>(kernels::Pool2dParams::make(3, 1, 1, false)));
    gap = register_module("gap", std::make_shared<GlobalAvgPool>());
    fc = register_module("fc", std::make_shared<Linear>(8, classes));
  }
  Tensor forward(const Tensor& x) override {
    return fc->forward(gap->forward(avg->forward(block->forward(pool->forward(stem->forward(x))))));
  }
  ConvBnReLU* stem;
  MaxPool2d* pool;
  MiniBlock* block;
  AvgPool2d* avg;
  GlobalAvgPool* gap;
  Linear* fc;
};

}  // namespace

TEST(Module, DottedNamesFollowTorchvision) {
  init::set_seed(1);
  MiniNet net(3);
  std::vector<std::string> names;
  for (auto& p : net.named_state()) names.push_back(p.name);
  const std::vector<std::string> expected_prefix = {"stem.conv.weight", "stem.bn.weight", "stem.bn.bias"};
  EXPECT_TRUE(std::equal(expected_prefix.begin(), expected_prefix.end(), names.begin())) << names[0];
  EXPECT_NE(std::find(names.begin(), names.end(), "block.res.block.branch1x3_3x1.b.conv.weight"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "block.res.alpha"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "stem.bn.running_var"), names.end());
  EXPECT_EQ(names.back(), "block.res.block.branch1x3_3x1.b.bn.running_var");
  EXPECT_EQ(net.find("block.res.block.branch1x1")->type_name(), "ConvBnReLU");
  EXPECT_EQ(net.find("no.such.module"), nullptr);
  // conv OHWI weights: [out, kh, kw, in]
  EXPECT_EQ(net.stem->conv->weight.shape(), (Shape{8, 3, 3, 1}));
  EXPECT_EQ(net.num_parameters(), 8 * 9 + 16 + 4 * 8 + 8 + 4 * 3 * 8 + 8 + 4 * 3 * 4 + 8 + 1 + 8 * 3 + 3);
}

TEST(Module, SameSeedSameWeights) {
  init::set_seed(7);
  MiniNet a(2);
  init::set_seed(7);
  MiniNet b(2);
  init::set_seed(8);
  MiniNet c(2);
  EXPECT_EQ(a.fc->weight.to_vector<float>(), b.fc->weight.to_vector<float>());
  EXPECT_NE(a.fc->weight.to_vector<float>(), c.fc->weight.to_vector<float>());
}

TEST(Module, TrainEvalAndFreezing) {
  init::set_seed(3);
  MiniNet net(2);
  const Tensor x = randn(Shape{4, 15, 15, 1}, 5);
  const auto rm0 = net.stem->bn->running_mean.to_vector<float>();
  net.train();
  (void)net(x);
  EXPECT_NE(net.stem->bn->running_mean.to_vector<float>(), rm0) << "train mode updates running statistics";
  net.eval();
  const auto rm1 = net.stem->bn->running_mean.to_vector<float>();
  const auto y1 = net(x).to_vector<float>();
  EXPECT_EQ(net.stem->bn->running_mean.to_vector<float>(), rm1) << "eval mode leaves them";
  EXPECT_EQ(net(x).to_vector<float>(), y1) << "eval is deterministic";
  // Frozen: no gradients for its parameters, and its BN behaves as in eval even in train mode.
  net.train();
  net.stem->set_frozen(true);
  EXPECT_FALSE(net.stem->conv->weight.requires_grad());
  (void)net(x);
  EXPECT_EQ(net.stem->bn->running_mean.to_vector<float>(), rm1);
  Tensor loss = F::cross_entropy(net(x), Tensor::from_vector<std::int32_t>({0, 1, 1, 0}, Shape{4}));
  backward(loss);
  EXPECT_FALSE(net.stem->conv->weight.grad().defined());
  EXPECT_TRUE(net.fc->weight.grad().defined());
  net.stem->set_frozen(false);
  EXPECT_TRUE(net.stem->conv->weight.requires_grad());
}

TEST(Module, ResidualNeedsMatchingShapes) {
  auto conv = std::make_shared<Conv2d>(3, 4, 1, 1);
  Residual r(conv);
  try {
    (void)r(zeros(Shape{1, 2, 2, 3}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 2, 2, 3] to [1, 2, 2, 4]"), std::string::npos) << e.what();
  }
}

TEST(Init, DistributionsHaveTheirMoments) {
  Tensor w = Tensor::empty(Shape{256, 3, 3, 64});
  init::kaiming_normal_(w, {1, 0});
  double s2 = 0;
  for (float v : w.to_vector<float>()) s2 += v * v;
  EXPECT_NEAR(std::sqrt(s2 / w.numel()), std::sqrt(2.0 / (9 * 64)), 0.002);
  Tensor t = Tensor::empty(Shape{100000});
  init::trunc_normal_(t, {2, 0}, 0.f, 0.1f);
  for (float v : t.to_vector<float>()) ASSERT_LE(std::fabs(v), 0.2f + 1e-6f);
  Tensor u = Tensor::empty(Shape{100, 50});
  init::xavier_uniform_(u, {3, 0});
  const float bound = std::sqrt(6.f / 150.f);
  for (float v : u.to_vector<float>()) ASSERT_LE(std::fabs(v), bound);
  EXPECT_EQ(init::fans(Shape{32, 3, 3, 16}), (std::pair<std::int64_t, std::int64_t>{144, 288}));
}

TEST(SmallNetwork, GradientsMatchFiniteDifferencesEndToEnd) {
  init::set_seed(11);
  auto net = std::make_shared<MiniNet>(3);
  net->train();
  // Gradient with respect to the input image and to a few parameters, through every layer type.
  OpCase c;
  c.name = "mini_inception";
  c.input_shapes = {Shape{2, 13, 13, 1}};
  c.differentiable = [net](const std::vector<Tensor>& in) {
    return F::cross_entropy(net->forward(in[0]), Tensor::from_vector<std::int32_t>({2, 0}, Shape{2}));
  };
  c.grad_eps = 1e-2;
  c.grad_tol = 3e-2;
  run_gradient_check(c);
  // Parameter gradients: perturb single weights and compare with .grad().
  net->zero_grad();
  const Tensor x = randn(Shape{2, 13, 13, 1}, 21);
  const Tensor labels = Tensor::from_vector<std::int32_t>({1, 2}, Shape{2});
  backward(F::cross_entropy(net->forward(x), labels));
  for (auto& named : net->named_parameters()) {
    Tensor& p = *named.tensor;
    const std::vector<float> g = p.grad().to_vector<float>();
    const std::int64_t j = p.numel() / 2;
    auto loss_at = [&](float delta) {
      NoGradGuard ng;
      std::vector<float> v = p.to_vector<float>();
      const float old = v[j];
      v[j] = old + delta;
      copy_(p, Tensor::from_vector(v, p.shape()));
      const double l = F::cross_entropy(net->forward(x), labels).item();
      v[j] = old;
      copy_(p, Tensor::from_vector(v, p.shape()));
      return l;
    };
    const double num = (loss_at(1e-2f) - loss_at(-1e-2f)) / 2e-2;
    EXPECT_NEAR(g[j], num, 3e-2 * std::max({1.0, std::fabs(num), std::fabs(static_cast<double>(g[j]))})) << named.name;
  }
}

TEST(SmallNetwork, SgdStepsLowerTheLoss) {
  init::set_seed(5);
  MiniNet net(2);
  net.train();
  // Two separable classes: bright centre vs dark centre.
  std::vector<float> img(8 * 15 * 15);
  std::vector<std::int32_t> lab(8);
  for (int n = 0; n < 8; ++n) {
    lab[n] = n % 2;
    for (int h = 0; h < 15; ++h)
      for (int w = 0; w < 15; ++w) {
        const bool centre = std::abs(h - 7) < 4 && std::abs(w - 7) < 4;
        img[(n * 15 + h) * 15 + w] = (centre ? (lab[n] ? 1.f : -1.f) : 0.f) + 0.1f * std::sin(n * 7 + h * 3 + w);
      }
  }
  const Tensor x = Tensor::from_vector(img, Shape{8, 15, 15, 1});
  const Tensor y = Tensor::from_vector(lab, Shape{8});
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    net.zero_grad();
    Tensor loss = F::cross_entropy(net(x), y);
    backward(loss);
    if (step == 0) first = loss.item();
    last = loss.item();
    NoGradGuard ng;
    for (Tensor* p : net.parameters()) kernels::axpby(-0.1f, p->grad(), 1.f, *p);
  }
  EXPECT_LT(last, 0.5 * first) << "loss " << first << " -> " << last;
}

TEST(SmallNetwork, RunsOnTheGpuLikeOnTheCpu) {
  LN_REQUIRE_CUDA();
  init::set_seed(9);
  MiniNet cpu(3);
  init::set_seed(9);
  MiniNet gpu(3);
  gpu.to(Device::cuda());
  const Tensor x = randn(Shape{4, 17, 17, 1}, 2);
  const Tensor labels = Tensor::from_vector<std::int32_t>({0, 1, 2, 1}, Shape{4});
  Tensor lc = F::cross_entropy(cpu(x), labels);
  Tensor lg = F::cross_entropy(gpu(x.to(Device::cuda())), labels.to(Device::cuda()));
  EXPECT_NEAR(lc.item(), lg.item(), 1e-5 * std::max(1.0, std::fabs(lc.item())));
  backward(lc);
  backward(lg);
  auto pc = cpu.named_parameters();
  auto pg = gpu.named_parameters();
  for (std::size_t i = 0; i < pc.size(); ++i)
    EXPECT_LT(max_rel_error(values(pg[i].tensor->grad()), values(pc[i].tensor->grad())), 1e-4) << pc[i].name;
}
