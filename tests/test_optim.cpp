// Optimizers, schedules, gradient clipping and loss scaling against torch.optim (test-only oracle,
// tests/optim_reference.py) on the same gradients: 1e-6 relative in f32; and on the GPU against the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "io/hdf5.h"
#include "kernels/ops.h"
#include "optim/optimizer.h"
#include "optim/scheduler.h"
#include "test_util.h"

using namespace livernet;
using namespace livernet::testing;

namespace {

const std::string kData = std::string(LIVERNET_TEST_DATA_DIR) + "/optim_reference.h5";

#define LN_REQUIRE_OPTIM_DATA()                                                                     \
  do {                                                                                              \
    if (!std::filesystem::exists(kData)) {                                                          \
      std::ifstream why(kData + ".skip");                                                           \
      std::string r((std::istreambuf_iterator<char>(why)), std::istreambuf_iterator<char>());       \
      GTEST_SKIP() << (r.empty() ? "no optimizer reference data" : r);                              \
    }                                                                                               \
  } while (0)

Tensor get(const std::string& name) { return io::H5File::open(kData).read(name, DType::f32); }

// Runs the six reference steps with `make` and compares every step's parameters.
template <typename Make>
void check_trajectory(const std::string& name, Make make, Device dev = Device::cpu()) {
  Tensor w = get("w0").to(dev).clone(), b = get("b0").to(dev).clone();
  w.requires_grad_();
  b.requires_grad_();
  std::vector<NamedParam> params{{"w", &w}, {"b", &b}};
  std::unique_ptr<Optimizer> opt = make(params);
  for (int i = 0; i < 6; ++i) {
    w.set_grad(get(str_cat("grad", i, "/w")).to(dev));
    b.set_grad(get(str_cat("grad", i, "/b")).to(dev));
    opt->step();
    for (auto [t, k] : {std::pair{&w, "w"}, std::pair{&b, "b"}}) {
      const double err = max_rel_error(values(*t), values(get(str_cat(name, "/step", i, "/", k))));
      EXPECT_LE(err, 1e-6) << name << " step " << i << " " << k;
    }
  }
}

auto sgd(SgdOptions o) {
  return [o](std::vector<NamedParam> p) { return std::unique_ptr<Optimizer>(new SGD(p, o)); };
}
auto adam(AdamOptions o) {
  return [o](std::vector<NamedParam> p) { return std::unique_ptr<Optimizer>(new Adam(p, o)); };
}

}  // namespace

TEST(Optim, TrajectoriesMatchTorch) {
  LN_REQUIRE_OPTIM_DATA();
  check_trajectory("sgd", sgd({.lr = 0.1f}));
  check_trajectory("sgd_momentum_wd", sgd({.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f, .decay_all = true}));
  check_trajectory("sgd_nesterov", sgd({.lr = 0.05f, .momentum = 0.8f, .nesterov = true}));
  check_trajectory("adam_wd", adam({.lr = 0.01f, .weight_decay = 0.01f, .decay_all = true}));
  check_trajectory("adamw", adam({.lr = 0.01f, .weight_decay = 0.1f, .decoupled = true, .decay_all = true}));
  // The default: no weight decay on 1-D tensors (biases, BN): torch with two parameter groups.
  check_trajectory("adamw_no_decay_on_bias", adam({.lr = 0.01f, .weight_decay = 0.1f, .decoupled = true}));
}

TEST(Optim, GpuMatchesCpu) {
  LN_REQUIRE_CUDA();
  LN_REQUIRE_OPTIM_DATA();
  check_trajectory("sgd_momentum_wd", sgd({.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f, .decay_all = true}),
                   Device::cuda());
  check_trajectory("adamw", adam({.lr = 0.01f, .weight_decay = 0.1f, .decoupled = true, .decay_all = true}), Device::cuda());
}

TEST(Optim, StateRoundTripContinuesIdentically) {
  Tensor a = Tensor::randn(Shape{3, 3}, 1).requires_grad_(), b = a.clone().requires_grad_();
  std::vector<NamedParam> pa{{"x", &a}}, pb{{"x", &b}};
  Adam oa(pa, {.lr = 0.1f}), ob(pb, {.lr = 0.1f});
  for (int i = 0; i < 3; ++i) {
    a.set_grad(Tensor::randn(Shape{3, 3}, 10 + i));
    oa.step();
  }
  b.copy_(a);
  ob.load_state(oa.state(), oa.steps());
  for (int i = 3; i < 6; ++i) {
    a.set_grad(Tensor::randn(Shape{3, 3}, 10 + i));
    b.set_grad(Tensor::randn(Shape{3, 3}, 10 + i));
    oa.step();
    ob.step();
  }
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
}

TEST(Schedulers, ReduceOnPlateauMatchesTorch) {
  LN_REQUIRE_OPTIM_DATA();
  Tensor p = Tensor::zeros(Shape{1}).requires_grad_();
  SGD opt({{"p", &p}}, {.lr = 1.f});
  ReduceOnPlateau s(opt, 0.5f, 2, 0.1f);
  const auto metrics = get("plateau/metrics").to_vector<double>();
  const auto lrs = get("plateau/lrs").to_vector<double>();
  for (std::size_t i = 0; i < metrics.size(); ++i) {
    s.step(static_cast<int>(i), metrics[i]);
    EXPECT_FLOAT_EQ(opt.lr(), static_cast<float>(lrs[i])) << "epoch " << i;
  }
}

TEST(Schedulers, StepAndCosineWithWarmup) {
  Tensor p = Tensor::zeros(Shape{1}).requires_grad_();
  SGD opt({{"p", &p}}, {.lr = 1.f});
  StepLR st(opt, 2, 0.1f);
  st.step(0, 0);
  EXPECT_FLOAT_EQ(opt.lr(), 1.f);
  st.step(1, 0);
  EXPECT_FLOAT_EQ(opt.lr(), 0.1f);
  st.step(3, 0);
  EXPECT_FLOAT_EQ(opt.lr(), 0.01f);
  SGD opt2({{"p", &p}}, {.lr = 1.f});
  CosineWarmup cw(opt2, 2, 12, 0.f);
  EXPECT_FLOAT_EQ(opt2.lr(), 1.f / 3);  // warm-up epoch 0
  EXPECT_FLOAT_EQ(cw.lr_at(1), 2.f / 3);
  EXPECT_FLOAT_EQ(cw.lr_at(2), 1.f);
  EXPECT_NEAR(cw.lr_at(7), 0.5f, 1e-6);
  EXPECT_NEAR(cw.lr_at(12), 0.f, 1e-7);
}

TEST(GradientUtils, ClipGradNormMatchesTorch) {
  LN_REQUIRE_OPTIM_DATA();
  Tensor w = get("w0"), b = get("b0");
  w.requires_grad_();
  b.requires_grad_();
  w.set_grad(kernels::scale(get("grad0/w"), 3.f));
  b.set_grad(kernels::scale(get("grad0/b"), 3.f));
  const double norm = clip_grad_norm({{"w", &w}, {"b", &b}}, 2.0);
  EXPECT_NEAR(norm, get("clip/norm").item(), 1e-5 * norm);
  EXPECT_LE(max_rel_error(values(w.grad()), values(get("clip/w"))), 1e-6);
  EXPECT_LE(max_rel_error(values(b.grad()), values(get("clip/b"))), 1e-6);
}

TEST(GradientUtils, NonFiniteGradientsAreDetectedAndLossScalingBacksOff) {
  Tensor w = Tensor::ones(Shape{4}).requires_grad_();
  std::vector<NamedParam> params{{"w", &w}};
  w.set_grad(Tensor::from_vector<float>({1, 2, NAN, 4}, Shape{4}));
  EXPECT_FALSE(grads_finite(params));
  EXPECT_TRUE(std::isnan(clip_grad_norm(params, 1.0)));
  LossScaler s(1024.f, 2.f, 0.5f, 3);
  w.set_grad(Tensor::full(Shape{4}, 2048.0));
  EXPECT_TRUE(s.unscale(params));
  EXPECT_EQ(w.grad().to_vector<float>()[0], 2.f);
  s.update(true);
  s.update(true);
  s.update(true);
  EXPECT_EQ(s.scale(), 2048.f) << "grows after 3 clean steps";
  w.set_grad(Tensor::full(Shape{4}, INFINITY));
  EXPECT_FALSE(s.unscale(params));
  s.update(false);
  EXPECT_EQ(s.scale(), 1024.f) << "backs off after an overflow";
}
