// Optimizers, schedules, gradient clipping and loss scaling against torch.optim (test-only oracle,
// tests/optim_reference.py) on the same gradients: 1e-6 relative in f32; and on the GPU against the CPU.
// The multi-tensor kernels against the per-parameter ones, bit for bit, on both devices.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "io/hdf5.h"
#include "kernels/elementwise.h"
#include "kernels/optim.h"
#include "kernels/tensor_ops.h"
#include "optim/optimizer.h"
#include "optim/scheduler.h"
#include "test_util.h"

using namespace livernet;
using namespace livernet::testing;

namespace {

const std::string kData = std::string(LIVERNET_TEST_DATA_DIR) + "/optim_reference.h5";

#define LN_REQUIRE_OPTIM_DATA() LN_REQUIRE_REFERENCE_DATA(kData, kData + ".skip", "no optimizer reference data")

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
  Tensor a = randn(Shape{3, 3}, 1).requires_grad_(), b = a.clone().requires_grad_();
  std::vector<NamedParam> pa{{"x", &a}}, pb{{"x", &b}};
  Adam oa(pa, {.lr = 0.1f}), ob(pb, {.lr = 0.1f});
  for (int i = 0; i < 3; ++i) {
    a.set_grad(randn(Shape{3, 3}, 10 + i));
    oa.step();
  }
  copy_(b, a);
  ob.load_state(oa.state(), oa.steps());
  for (int i = 3; i < 6; ++i) {
    a.set_grad(randn(Shape{3, 3}, 10 + i));
    b.set_grad(randn(Shape{3, 3}, 10 + i));
    oa.step();
    ob.step();
  }
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
}

TEST(Schedulers, ReduceOnPlateauMatchesTorch) {
  LN_REQUIRE_OPTIM_DATA();
  Tensor p = zeros(Shape{1}).requires_grad_();
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
  Tensor p = zeros(Shape{1}).requires_grad_();
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
  Tensor w = ones(Shape{4}).requires_grad_();
  std::vector<NamedParam> params{{"w", &w}};
  w.set_grad(Tensor::from_vector<float>({1, 2, NAN, 4}, Shape{4}));
  EXPECT_FALSE(grads_finite(params));
  EXPECT_TRUE(std::isnan(clip_grad_norm(params, 1.0)));
  LossScaler s(1024.f, 2.f, 0.5f, 3);
  w.set_grad(full(Shape{4}, 2048.0));
  EXPECT_TRUE(s.unscale(params));
  EXPECT_EQ(w.grad().to_vector<float>()[0], 2.f);
  s.update(true);
  s.update(true);
  s.update(true);
  EXPECT_EQ(s.scale(), 2048.f) << "grows after 3 clean steps";
  w.set_grad(full(Shape{4}, INFINITY));
  EXPECT_FALSE(s.unscale(params));
  s.update(false);
  EXPECT_EQ(s.scale(), 1024.f) << "backs off after an overflow";
}

// ---- multi-tensor kernels ----------------------------------------------------------------------------

namespace {

std::vector<std::uint32_t> bits(const Tensor& t) {
  if (!t.defined()) return {};
  const Tensor h = t.to(Device::cpu());
  std::vector<std::uint32_t> b(static_cast<std::size_t>(h.numel()));
  std::memcpy(b.data(), h.data_ptr(), h.nbytes());
  return b;
}

// Index of the first element whose bits differ (or the size when the sizes differ), -1 when identical.
std::int64_t first_difference(const Tensor& a, const Tensor& b) {
  const std::vector<std::uint32_t> x = bits(a), y = bits(b);
  if (x.size() != y.size()) return static_cast<std::int64_t>(std::min(x.size(), y.size()));
  const auto [ix, iy] = std::mismatch(x.begin(), x.end(), y.begin());
  return ix == x.end() ? -1 : ix - x.begin();
}

// A copy of t that starts `offset` elements into a larger buffer: an offset that is not a multiple of
// 16 bytes leaves it misaligned for vector access, so the CUDA kernels take their element-wise path.
Tensor at_offset(const Tensor& t, std::int64_t offset) {
  Tensor buffer = zeros(Shape{t.numel() + offset}, t.dtype(), t.device());
  Tensor view = buffer.slice0(offset, offset + t.numel());
  copy_(view, t);
  return view;
}

// Copies of ts; every other one misaligned by `misalign` elements.
std::vector<Tensor> copies(const std::vector<Tensor>& ts, std::int64_t misalign) {
  std::vector<Tensor> out;
  for (std::size_t i = 0; i < ts.size(); ++i) out.push_back(ts[i].defined() ? at_offset(ts[i], i % 2 ? misalign : 0) : Tensor());
  return out;
}

// Random 1-D tensors of the given sizes (N(0, 1)), every other one misaligned by `misalign` elements.
std::vector<Tensor> random_list(const std::vector<std::int64_t>& sizes, std::uint64_t seed, Device dev,
                                std::int64_t misalign, DType dtype = DType::f32) {
  std::vector<Tensor> out;
  for (std::size_t i = 0; i < sizes.size(); ++i)
    out.push_back(at_offset(randn(Shape{sizes[i]}, seed, i, 0.f, 1.f, dtype, dev), i % 2 ? misalign : 0));
  return out;
}

// One element, a vector tail, several vectors, one past a 65536-element CUDA chunk (misaligned at odd
// indices of the lists below, aligned at even ones), ...
const std::vector<std::int64_t> kOddSizes{1, 7, 1000, 65537, 65537, 33, 4096, 4};

// kOddSizes, then enough tensors and elements to fill several CUDA tensor tables (> 255 tensors, > 320
// chunks, a tensor split between two tables; the largest one aligned).
std::vector<std::int64_t> many_sizes() {
  std::vector<std::int64_t> sizes = kOddSizes;
  for (int k = 0; k < 300; ++k) sizes.push_back(1 + 37 * k % 2000);
  sizes.push_back(321 * 65536 + 3);
  sizes.push_back(5);
  return sizes;
}

void expect_same_bits(const std::vector<Tensor>& a, const std::vector<Tensor>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(first_difference(a[i], b[i]), -1) << what << " tensor " << i;
}

std::vector<Tensor> zeros_like(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(zeros(t.shape(), t.dtype(), t.device()));
  return out;
}

// Three steps of several SGD and Adam settings through the per-parameter kernels and through the
// multi-tensor ones from the same start: parameters and state agree bit for bit after every step.
void check_multi_matches_per_parameter(Device dev, const std::vector<std::int64_t>& sizes) {
  const std::vector<Tensor> p0 = random_list(sizes, 1, dev, 1);
  const std::size_t n = sizes.size();
  const auto decay = [](std::size_t i) { return i % 3 == 0 ? 0.f : 0.01f * static_cast<float>(i % 7 + 1); };
  for (const kernels::SgdHyper h : {kernels::SgdHyper{0.1f, 0.f, 0.f, false}, kernels::SgdHyper{0.05f, 0.9f, 0.1f, false},
                                    kernels::SgdHyper{0.05f, 0.8f, 0.f, true}}) {
    const std::string name = str_cat("sgd momentum ", h.momentum, " dampening ", h.dampening, " nesterov ", h.nesterov);
    std::vector<Tensor> p_one = copies(p0, 1), p_multi = copies(p0, 3);
    std::vector<Tensor> buf_one(n), buf_multi(n);
    if (h.momentum != 0.f) {
      buf_one = copies(zeros_like(p0), 2);
      buf_multi = copies(zeros_like(p0), 1);
    }
    for (int step = 0; step < 3; ++step) {
      const std::vector<Tensor> grads = random_list(sizes, 10 + step, dev, 3);
      std::vector<kernels::SgdParamHyper> per_param;
      // Buffers are created lazily: parameter 2 joins a step late.
      for (std::size_t i = 0; i < n; ++i) per_param.push_back({decay(i), step == 0 || (step == 1 && i == 2)});
      for (std::size_t i = 0; i < n; ++i) kernels::sgd_update(p_one[i], grads[i], buf_one[i], h, per_param[i]);
      kernels::sgd_update_multi(p_multi, grads, buf_multi, per_param, h);
      expect_same_bits(p_one, p_multi, str_cat(name, " step ", step, " parameters"));
      expect_same_bits(buf_one, buf_multi, str_cat(name, " step ", step, " momentum buffers"));
    }
  }
  for (const bool decoupled : {false, true}) {
    const std::string name = decoupled ? "adamw" : "adam";
    std::vector<Tensor> p_one = copies(p0, 1), p_multi = copies(p0, 3);
    std::vector<Tensor> m_one = copies(zeros_like(p0), 2), m_multi = zeros_like(p0);
    std::vector<Tensor> v_one = zeros_like(p0), v_multi = copies(zeros_like(p0), 1);
    std::vector<float> decays;
    for (std::size_t i = 0; i < n; ++i) decays.push_back(decay(i));
    for (int step = 0; step < 3; ++step) {
      const std::vector<Tensor> grads = random_list(sizes, 20 + step, dev, 3);
      const double t = step + 1;
      const kernels::AdamHyper h{0.01f, 0.9f, 0.999f, 1e-8f, decoupled, static_cast<float>(1 - std::pow(0.9, t)),
                                 static_cast<float>(std::sqrt(1 - std::pow(0.999, t)))};
      for (std::size_t i = 0; i < n; ++i) kernels::adam_update(p_one[i], grads[i], m_one[i], v_one[i], h, decays[i]);
      kernels::adam_update_multi(p_multi, grads, m_multi, v_multi, decays, h);
      expect_same_bits(p_one, p_multi, str_cat(name, " step ", step, " parameters"));
      expect_same_bits(m_one, m_multi, str_cat(name, " step ", step, " first moments"));
      expect_same_bits(v_one, v_multi, str_cat(name, " step ", step, " second moments"));
    }
  }
}

// found_inf != 0 (1 or NaN) writes nothing, found_inf == 0 is the same as none; grad_mul multiplies the
// gradients: the same bits as the per-parameter kernels on gradients multiplied (in f32) beforehand.
void check_found_inf_and_grad_mul(Device dev) {
  const std::vector<std::int64_t>& sizes = kOddSizes;
  const std::size_t n = sizes.size();
  const std::vector<Tensor> p0 = random_list(sizes, 5, dev, 1), grads = random_list(sizes, 6, dev, 3);
  const std::vector<Tensor> s0 = random_list(sizes, 7, dev, 2);
  std::vector<Tensor> v0;  // second moments must be >= 0
  for (const Tensor& t : random_list(sizes, 8, dev, 1)) v0.push_back(kernels::unary(kernels::UnaryOp::square, t));
  const std::vector<kernels::SgdParamHyper> sgd_per_param(n, kernels::SgdParamHyper{0.01f, false});
  const std::vector<float> decays(n, 0.01f);
  const kernels::SgdHyper sgd{0.1f, 0.9f, 0.f, true};
  const kernels::AdamHyper adam{0.01f, 0.9f, 0.999f, 1e-8f, false, 0.271f, 0.0447f};
  const auto scalar = [&](float x) { return full(Shape{1}, x, DType::f32, dev); };

  for (const float skip : {1.f, NAN}) {
    std::vector<Tensor> p = copies(p0, 1), b = copies(s0, 3), m = copies(s0, 1), v = copies(v0, 2);
    kernels::sgd_update_multi(p, grads, b, sgd_per_param, sgd, scalar(skip), scalar(0.5f));
    expect_same_bits(p, p0, str_cat("sgd, found_inf = ", skip, ": parameters"));
    expect_same_bits(b, s0, str_cat("sgd, found_inf = ", skip, ": momentum buffers"));
    kernels::adam_update_multi(p, grads, m, v, decays, adam, scalar(skip));
    expect_same_bits(p, p0, str_cat("adam, found_inf = ", skip, ": parameters"));
    expect_same_bits(m, s0, str_cat("adam, found_inf = ", skip, ": first moments"));
    expect_same_bits(v, v0, str_cat("adam, found_inf = ", skip, ": second moments"));
  }

  // Reference: per-parameter kernels on gradients times 0.3 rounded to f32 on the host.
  std::vector<Tensor> scaled;
  for (const Tensor& g : grads) {
    std::vector<float> x = g.to_vector<float>();
    for (float& e : x) e *= 0.3f;
    scaled.push_back(Tensor::from_vector(x, g.shape(), dev));
  }
  std::vector<Tensor> p_ref = copies(p0, 1), b_ref = copies(s0, 1), m_ref = copies(s0, 2), v_ref = copies(v0, 3);
  for (std::size_t i = 0; i < n; ++i) {
    kernels::sgd_update(p_ref[i], scaled[i], b_ref[i], sgd, sgd_per_param[i]);
    kernels::adam_update(p_ref[i], scaled[i], m_ref[i], v_ref[i], adam, decays[i]);
  }
  std::vector<Tensor> p = copies(p0, 3), b = copies(s0, 2), m = copies(s0, 1), v = copies(v0, 1);
  kernels::sgd_update_multi(p, grads, b, sgd_per_param, sgd, scalar(0.f), scalar(0.3f));
  kernels::adam_update_multi(p, grads, m, v, decays, adam, scalar(0.f), scalar(0.3f));
  expect_same_bits(p, p_ref, "grad_mul 0.3: parameters");
  expect_same_bits(b, b_ref, "grad_mul 0.3: momentum buffers");
  expect_same_bits(m, m_ref, "grad_mul 0.3: first moments");
  expect_same_bits(v, v_ref, "grad_mul 0.3: second moments");
}

// A step skipped on the device (found_inf = 1) and rewound on the host leaves the optimizer exactly as
// if it had not been called, including the first step (lazily created state, Adam's bias correction,
// SGD's dampening-free first momentum).
template <typename Make>
void check_rewind(const std::string& name, Make make, Device dev) {
  Tensor wa = randn(Shape{5, 4}, 3, 0, 0.f, 1.f, DType::f32, dev), ba = randn(Shape{4}, 4, 0, 0.f, 1.f, DType::f32, dev);
  Tensor wb = wa.clone(), bb = ba.clone();
  for (Tensor* t : {&wa, &ba, &wb, &bb}) t->requires_grad_();
  std::vector<NamedParam> pa{{"w", &wa}, {"b", &ba}}, pb{{"w", &wb}, {"b", &bb}};
  std::unique_ptr<Optimizer> oa = make(pa), ob = make(pb);
  const Tensor skip = ones(Shape{1}, DType::f32, dev);
  for (int i = 0; i < 3; ++i) {
    const Tensor gw = randn(Shape{5, 4}, 30 + i, 0, 0.f, 1.f, DType::f32, dev);
    const Tensor gb = randn(Shape{4}, 40 + i, 0, 0.f, 1.f, DType::f32, dev);
    wa.set_grad(gw);
    ba.set_grad(gb);
    wb.set_grad(gw);
    bb.set_grad(gb);
    oa->step();
    const std::vector<std::uint32_t> before = bits(wb);
    ob->step(skip);
    EXPECT_EQ(bits(wb), before) << name << " step " << i << ": a skipped step wrote";
    ob->rewind_step();
    ob->step();
    EXPECT_EQ(oa->steps(), ob->steps()) << name;
    EXPECT_EQ(first_difference(wa, wb), -1) << name << " step " << i;
    EXPECT_EQ(first_difference(ba, bb), -1) << name << " step " << i;
    const auto sa = oa->state(), sb = ob->state();
    ASSERT_EQ(sa.size(), sb.size()) << name;
    for (const auto& [k, t] : sa) EXPECT_EQ(first_difference(t, sb.at(k)), -1) << name << " " << k;
  }
  ob->step(skip);
  ob->rewind_step();
  EXPECT_NE(error_of([&] { ob->rewind_step(); }).find("no step to undo"), std::string::npos) << name << ": rewound twice";
}

void check_rewinds(Device dev) {
  check_rewind("sgd", sgd({.lr = 0.1f, .momentum = 0.9f, .dampening = 0.5f, .weight_decay = 0.01f}), dev);
  check_rewind("adam", adam({.lr = 0.01f, .weight_decay = 0.01f}), dev);
}

// grad_stats_multi against the per-tensor grad_stats summed on the host (1e-6 relative, flag exact), in
// every float dtype, with misaligned tensors; NaN/inf found at the start, middle and end (a chunk's
// tail) of a misaligned tensor, an aligned one and the largest; the same bits on a second call.
void check_grad_stats_multi(Device dev, const std::vector<std::int64_t>& sizes) {
  const std::size_t big = static_cast<std::size_t>(std::max_element(sizes.begin(), sizes.end()) - sizes.begin());
  ASSERT_EQ(sizes[3], 65537);
  ASSERT_EQ(sizes[4], 65537);
  for (const DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    const std::string name = dtype_name(dtype);
    std::vector<Tensor> xs = random_list(sizes, 50, dev, 1, dtype);
    Tensor out = Tensor::empty(Shape{2}, DType::f32, dev);
    kernels::grad_stats_multi(xs, out);
    double ref = 0;
    for (const Tensor& x : xs) {
      const std::vector<double> st = kernels::grad_stats(x).to_vector<double>();
      ref += st[0];
      ASSERT_EQ(st[1], 0.0) << name;
    }
    const std::vector<double> v = out.to_vector<double>();
    EXPECT_NEAR(v[0], ref, 1e-6 * ref) << name;
    EXPECT_EQ(v[1], 0.0) << name;
    Tensor again = Tensor::empty(Shape{2}, DType::f32, dev);
    kernels::grad_stats_multi(xs, again);
    EXPECT_EQ(bits(out), bits(again)) << name << ": not the same on a second run";

    for (const std::size_t which : {std::size_t{3}, std::size_t{4}, big}) {
      const std::int64_t n = xs[which].numel();
      for (const std::int64_t at : {n - 1, n / 2 + 1, std::int64_t{0}}) {
        for (const double bad : {static_cast<double>(NAN), static_cast<double>(INFINITY), -static_cast<double>(INFINITY)}) {
          Tensor one = xs[which].slice0(at, at + 1);
          const Tensor keep = one.clone();
          fill_(one, bad);
          kernels::grad_stats_multi(xs, out);
          EXPECT_EQ(out.to_vector<double>()[1], 1.0) << name << ": " << bad << " at " << at << " of tensor " << which;
          copy_(one, keep);
        }
      }
    }
    kernels::grad_stats_multi(xs, out);
    EXPECT_EQ(out.to_vector<double>()[1], 0.0) << name;
  }
}

}  // namespace

TEST(OptimMulti, MatchesPerParameterKernelsBitForBit) { check_multi_matches_per_parameter(Device::cpu(), kOddSizes); }

TEST(OptimMulti, GpuMatchesPerParameterKernelsBitForBit) {
  LN_REQUIRE_CUDA();
  check_multi_matches_per_parameter(Device::cuda(), many_sizes());
}

TEST(OptimMulti, FoundInfSkipsAndGradMulScales) { check_found_inf_and_grad_mul(Device::cpu()); }

TEST(OptimMulti, GpuFoundInfSkipsAndGradMulScales) {
  LN_REQUIRE_CUDA();
  check_found_inf_and_grad_mul(Device::cuda());
}

TEST(OptimMulti, SkippedAndRewoundStepIsAsIfNotCalled) { check_rewinds(Device::cpu()); }

TEST(OptimMulti, GpuSkippedAndRewoundStepIsAsIfNotCalled) {
  LN_REQUIRE_CUDA();
  check_rewinds(Device::cuda());
}

TEST(OptimMulti, ListsAreChecked) {
  Tensor p = zeros(Shape{3}), g = zeros(Shape{3}), g4 = zeros(Shape{4});
  const kernels::AdamHyper h{0.01f, 0.9f, 0.999f, 1e-8f, false, 0.1f, 0.03f};
  EXPECT_EQ(error_of([&] { kernels::adam_update_multi({p, p}, {g}, {g, g}, {g, g}, {0.f, 0.f}, h); }),
            "adam_update_multi: 1 gradients for 2 parameters");
  EXPECT_EQ(error_of([&] { kernels::adam_update_multi({p, p}, {g, g4}, {g, g}, {g, g}, {0.f, 0.f}, h); }),
            "adam_update_multi (parameter 1): shapes differ: [3] vs [4]");
  EXPECT_EQ(error_of([&] { kernels::adam_update_multi({p}, {g}, {g}, {g}, {0.f}, h, zeros(Shape{2})); }),
            "adam_update_multi: found_inf must be a one-element f32 tensor, got [2] f32");
  EXPECT_EQ(error_of([&] {
              kernels::sgd_update_multi({p}, {g}, {Tensor()}, {kernels::SgdParamHyper{0.f, true}},
                                        kernels::SgdHyper{0.1f, 0.9f, 0.f, false});
            }),
            "sgd_update_multi (parameter 0): momentum buffer is undefined");
}

TEST(GradientUtils, GradStatsMultiMatchesPerTensorStats) { check_grad_stats_multi(Device::cpu(), kOddSizes); }

TEST(GradientUtils, GpuGradStatsMultiMatchesPerTensorStats) {
  LN_REQUIRE_CUDA();
  check_grad_stats_multi(Device::cuda(), many_sizes());
}

TEST(GradientUtils, GradStatsDeviceWithoutGradientsIsZero) {
  Tensor w = ones(Shape{4}).requires_grad_();
  EXPECT_EQ(grad_stats_device({{"w", &w}}).to_vector<float>(), (std::vector<float>{0.f, 0.f}));
  w.set_grad(full(Shape{4}, 2.0));
  EXPECT_EQ(grad_stats_device({{"w", &w}}).to_vector<float>(), (std::vector<float>{16.f, 0.f}));
}
