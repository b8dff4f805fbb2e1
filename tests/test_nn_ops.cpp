// Forward checks of the NN ops: one table row per case against naive float64 references
// (tests/reference_ops.h) on the CPU, and CUDA against the CPU when a GPU is present.
#include <gtest/gtest.h>

#include <cmath>

#include "core/philox.h"
#include "kernels/nn.h"
#include "kernels/elementwise.h"
#include "kernels/tensor_ops.h"
#include "op_harness.h"
#include "reference_ops.h"

using namespace livernet;
using namespace livernet::testing;
using kernels::Conv2dParams;
using livernet::testing::ref::cp;
using kernels::Pool2dParams;

namespace {

OpCase conv_case(const std::string& name, Shape xs, Shape ws, Conv2dParams p, bool bias) {
  OpCase c;
  c.name = name;
  c.input_shapes = {xs, ws};
  if (bias) c.input_shapes.push_back(Shape{ws[0]});
  c.run = [p](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{kernels::conv2d_forward(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), p)};
  };
  c.reference = [xs, ws, p](const std::vector<HostValues>& in) {
    return std::vector<HostValues>{ref::conv2d(in[0], xs, in[1], ws, in.size() > 2 ? &in[2] : nullptr, p)};
  };
  c.tol_f32 = 2e-5;
  c.tol_half = 2e-2;
  return c;
}


std::vector<OpCase> conv_cases() {
  return {
      conv_case("conv3x3_stride2_valid", Shape{2, 11, 9, 3}, Shape{5, 3, 3, 3}, cp(2, 0, 0, 0, 0), false),
      conv_case("conv3x3_same_bias", Shape{2, 7, 8, 4}, Shape{6, 3, 3, 4}, cp(1, 1, 1, 1, 1), true),
      conv_case("conv1x7", Shape{1, 9, 10, 5}, Shape{4, 1, 7, 5}, cp(1, 0, 0, 3, 3), false),
      conv_case("conv7x1", Shape{2, 10, 6, 3}, Shape{5, 7, 1, 3}, cp(1, 3, 3, 0, 0), false),
      conv_case("conv1x3_3x1_pair", Shape{1, 5, 5, 8}, Shape{3, 1, 3, 8}, cp(1, 0, 0, 1, 1), false),
      conv_case("conv5x5_same", Shape{1, 9, 9, 3}, Shape{4, 5, 5, 3}, cp(1, 2, 2, 2, 2), false),
      conv_case("conv1x1", Shape{3, 4, 5, 16}, Shape{7, 1, 1, 16}, cp(1, 0, 0, 0, 0), true),
      conv_case("conv_asymmetric_pad", Shape{2, 8, 7, 3}, Shape{4, 3, 3, 3}, cp(2, 0, 1, 1, 0), true),
      conv_case("conv_dilated", Shape{1, 12, 11, 2}, Shape{3, 3, 3, 2}, cp(1, 2, 2, 2, 2, 2), false),
      conv_case("conv_grouped", Shape{2, 6, 6, 6}, Shape{9, 3, 3, 2}, cp(1, 1, 1, 1, 1, 1, 3), true),
  };
}

OpCase bn_case(const std::string& name, Shape xs, bool train, bool gamma, bool relu) {
  OpCase c;
  c.name = name;
  const std::int64_t C = xs.back();
  c.input_shapes = {xs, Shape{C}, Shape{C}, Shape{C}, Shape{C}};  // x, gamma, beta, running mean, running var
  c.run = [train, gamma, relu](const std::vector<Tensor>& in) {
    Tensor rm = to_dtype(in[3], DType::f32).clone();
    Tensor rv = kernels::unary(kernels::UnaryOp::abs, to_dtype(in[4], DType::f32));
    kernels::BatchNormState st;
    const Tensor g = gamma ? to_dtype(in[1], DType::f32) : Tensor();
    const Tensor b = to_dtype(in[2], DType::f32);
    Tensor y = train ? kernels::batch_norm_train(in[0], g, b, rm, rv, 0.1f, 1e-3f, relu, st)
                     : kernels::batch_norm_eval(in[0], g, b, rm, rv, 1e-3f, relu, st);
    return std::vector<Tensor>{y, rm, rv, st.save_mean, st.save_invstd};
  };
  c.reference = [C, train, gamma, relu](const std::vector<HostValues>& in) {
    HostValues rm = in[3], rv = in[4];
    for (double& v : rv) v = std::fabs(v);
    HostValues mean, var;
    if (train) {
      ref::channel_stats(in[0], C, mean, var);
      const double M = static_cast<double>(in[0].size()) / C;
      for (std::int64_t k = 0; k < C; ++k) {
        rm[k] = 0.9 * rm[k] + 0.1 * mean[k];
        rv[k] = 0.9 * rv[k] + 0.1 * var[k] * M / (M - 1);
      }
    } else {
      mean = in[3];
      var = rv;
    }
    HostValues invstd(C);
    for (std::int64_t k = 0; k < C; ++k) invstd[k] = 1 / std::sqrt(var[k] + 1e-3);
    const HostValues y = ref::bn_apply(in[0], C, mean, var, gamma ? &in[1] : nullptr, in[2], 1e-3, relu);
    return std::vector<HostValues>{y, rm, rv, mean, invstd};
  };
  c.tol_f32 = 2e-5;
  c.tol_half = 2e-2;
  return c;
}

OpCase pool_case(const std::string& name, Shape xs, Pool2dParams p, bool is_max) {
  OpCase c;
  c.name = name;
  c.input_shapes = {xs};
  c.run = [p, is_max](const std::vector<Tensor>& in) {
    Tensor idx;
    return std::vector<Tensor>{is_max ? kernels::max_pool2d_forward(in[0], p, idx) : kernels::avg_pool2d_forward(in[0], p)};
  };
  c.reference = [xs, p, is_max](const std::vector<HostValues>& in) {
    return std::vector<HostValues>{ref::pool2d(in[0], xs, p, is_max)};
  };
  c.tol_f32 = 1e-6;
  return c;
}

std::vector<OpCase> nn_cases() {
  std::vector<OpCase> cs;
  cs.push_back(bn_case("bn_train_gamma", Shape{3, 5, 4, 7}, true, true, false));
  cs.push_back(bn_case("bn_train_keras_no_gamma_relu", Shape{2, 6, 5, 9}, true, false, true));
  cs.push_back(bn_case("bn_eval_relu", Shape{4, 3, 3, 6}, false, true, true));
  cs.push_back(bn_case("bn_train_2d", Shape{10, 33}, true, true, false));
  cs.push_back(pool_case("maxpool3x3_s2", Shape{2, 11, 10, 5}, Pool2dParams::make(3, 2, 0), true));
  cs.push_back(pool_case("maxpool3x3_s1_pad1", Shape{1, 6, 7, 4}, Pool2dParams::make(3, 1, 1), true));
  cs.push_back(pool_case("avgpool3x3_s1_pad1_include_pad", Shape{2, 7, 6, 5}, Pool2dParams::make(3, 1, 1, true), false));
  cs.push_back(pool_case("avgpool3x3_s1_pad1_exclude_pad", Shape{2, 7, 6, 5}, Pool2dParams::make(3, 1, 1, false), false));
  cs.push_back(pool_case("avgpool5x5_s3", Shape{1, 17, 17, 3}, Pool2dParams::make(5, 3, 0), false));
  {
    OpCase c;
    c.name = "global_avg_pool";
    c.input_shapes = {Shape{3, 5, 6, 7}};
    c.run = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{kernels::global_avg_pool_forward(in[0])}; };
    c.reference = [](const std::vector<HostValues>& in) {
      HostValues y(21, 0.0);
      for (std::size_t i = 0; i < in[0].size(); ++i) y[(i / 210) * 7 + i % 7] += in[0][i] / 30.0;
      return std::vector<HostValues>{y};
    };
    cs.push_back(c);
  }
  {
    OpCase c;
    c.name = "concat_channels_and_split";
    c.input_shapes = {Shape{2, 3, 4, 5}, Shape{2, 3, 4, 2}, Shape{2, 3, 4, 7}};
    c.run = [](const std::vector<Tensor>& in) {
      Tensor y = kernels::concat(in, -1);
      std::vector<Tensor> parts = kernels::split(y, 3, {5, 2, 7});
      return std::vector<Tensor>{y, parts[0], parts[1], parts[2]};
    };
    c.reference = [](const std::vector<HostValues>& in) {
      HostValues y;
      for (std::size_t r = 0; r < 24; ++r)
        for (std::size_t k = 0; k < 3; ++k) {
          const std::size_t w = in[k].size() / 24;
          y.insert(y.end(), in[k].begin() + r * w, in[k].begin() + (r + 1) * w);
        }
      return std::vector<HostValues>{y, in[0], in[1], in[2]};
    };
    c.tol_f32 = 0;
    c.tol_half = 0;
    cs.push_back(c);
  }
  {
    OpCase c;
    c.name = "concat_axis0";
    c.input_shapes = {Shape{2, 3}, Shape{1, 3}};
    c.run = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{kernels::concat(in, 0)}; };
    c.reference = [](const std::vector<HostValues>& in) {
      HostValues y = in[0];
      y.insert(y.end(), in[1].begin(), in[1].end());
      return std::vector<HostValues>{y};
    };
    c.tol_f32 = 0;
    c.tol_half = 0;
    cs.push_back(c);
  }
  {
    OpCase c;
    c.name = "pad2d_crop2d";
    c.input_shapes = {Shape{2, 3, 4, 3}};
    c.run = [](const std::vector<Tensor>& in) {
      Tensor p = kernels::pad2d(in[0], 1, 2, 0, 3);
      return std::vector<Tensor>{p, kernels::crop2d(p, 1, 2, 0, 3)};
    };
    c.reference = [](const std::vector<HostValues>& in) {
      HostValues p(2 * 6 * 7 * 3, 0.0);
      for (int n = 0; n < 2; ++n)
        for (int h = 0; h < 3; ++h)
          for (int w = 0; w < 4; ++w)
            for (int k = 0; k < 3; ++k) p[((n * 6 + h + 1) * 7 + w) * 3 + k] = in[0][((n * 3 + h) * 4 + w) * 3 + k];
      return std::vector<HostValues>{p, in[0]};
    };
    c.tol_f32 = 0;
    c.tol_half = 0;
    cs.push_back(c);
  }
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    OpCase c;
    c.name = std::string("gemm_") + (ta ? "T" : "N") + (tb ? "T" : "N");
    const Shape as = ta ? Shape{13, 6} : Shape{6, 13}, bs = tb ? Shape{9, 13} : Shape{13, 9};
    c.input_shapes = {as, bs};
    c.run = [ta, tb](const std::vector<Tensor>& in) { return std::vector<Tensor>{kernels::matmul(in[0], ta, in[1], tb)}; };
    c.reference = [as, bs, ta, tb](const std::vector<HostValues>& in) {
      return std::vector<HostValues>{ref::matmul(in[0], as, ta, in[1], bs, tb)};
    };
    c.tol_f32 = 1e-5;
    c.tol_half = 2e-2;
    cs.push_back(c);
  }
  {
    OpCase c;
    c.name = "linear_with_bias";
    c.input_shapes = {Shape{5, 12}, Shape{7, 12}, Shape{7}};
    c.run = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{kernels::linear_forward(in[0], in[1], in[2])}; };
    c.reference = [](const std::vector<HostValues>& in) {
      HostValues y = ref::matmul(in[0], Shape{5, 12}, false, in[1], Shape{7, 12}, true);
      for (std::size_t i = 0; i < y.size(); ++i) y[i] += in[2][i % 7];
      return std::vector<HostValues>{y};
    };
    c.tol_f32 = 1e-5;
    c.tol_half = 2e-2;
    cs.push_back(c);
  }
  {
    OpCase c;
    c.name = "dropout_p03";
    c.input_shapes = {Shape{4, 1000}};
    c.run = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{kernels::dropout_forward(in[0], 0.3f, 77, 5)}; };
    c.reference = [](const std::vector<HostValues>& in) {
      HostValues y(in[0].size());
      for (std::size_t i = 0; i < y.size(); ++i)
        y[i] = philox_uniform_at(77, 5, i, 0.f, 1.f) >= 0.3f ? in[0][i] / 0.7 : 0.0;
      return std::vector<HostValues>{y};
    };
    cs.push_back(c);
  }
  for (int variant = 0; variant < 4; ++variant) {
    const bool weighted = variant & 1;
    const float smoothing = (variant & 2) ? 0.2f : 0.f;
    OpCase c;
    c.name = std::string("cross_entropy") + (weighted ? "_weighted" : "") + (smoothing > 0 ? "_smoothed" : "");
    c.input_shapes = {Shape{6, 4}, Shape{4}};
    static const std::vector<std::int64_t> labels{0, 3, 1, 1, 2, 3};
    c.run = [weighted, smoothing](const std::vector<Tensor>& in) {
      const Tensor lab = Tensor::from_vector(labels, Shape{6}, in[0].device());
      const Tensor w = weighted ? kernels::unary(kernels::UnaryOp::exp, to_dtype(in[1], DType::f32)) : Tensor();
      kernels::CrossEntropyState st;
      Tensor loss = kernels::softmax_cross_entropy_forward(in[0], lab, w, smoothing, st);
      return std::vector<Tensor>{loss, st.probs};
    };
    c.reference = [weighted, smoothing](const std::vector<HostValues>& in) {
      HostValues w = in[1];
      for (double& v : w) v = std::exp(v);
      const double loss = ref::cross_entropy(in[0], 6, 4, labels, weighted ? &w : nullptr, smoothing);
      HostValues p(24);
      for (int i = 0; i < 6; ++i) {
        double s = 0;
        for (int k = 0; k < 4; ++k) s += std::exp(in[0][i * 4 + k]);
        for (int k = 0; k < 4; ++k) p[i * 4 + k] = std::exp(in[0][i * 4 + k]) / s;
      }
      return std::vector<HostValues>{{loss}, p};
    };
    c.tol_f32 = 1e-6;
    c.tol_half = 1e-2;
    cs.push_back(c);
  }
  {
    OpCase c;
    c.name = "bce_with_logits_weighted";
    c.input_shapes = {Shape{5, 3}, Shape{5, 3}, Shape{5, 3}};
    c.run = [](const std::vector<Tensor>& in) {
      const Tensor t = kernels::unary(kernels::UnaryOp::sigmoid, in[1]);
      const Tensor w = kernels::unary(kernels::UnaryOp::abs, in[2]);
      return std::vector<Tensor>{kernels::bce_with_logits_forward(kernels::scale(in[0], 4.f), t, w)};
    };
    c.reference = [](const std::vector<HostValues>& in) {
      double s = 0;
      for (std::size_t i = 0; i < 15; ++i) {
        const double z = 4 * in[0][i], t = 1 / (1 + std::exp(-in[1][i])), w = std::fabs(in[2][i]);
        s += w * -(t * std::log(1 / (1 + std::exp(-z))) + (1 - t) * std::log(1 - 1 / (1 + std::exp(-z))));
      }
      return std::vector<HostValues>{{s / 15}};
    };
    c.tol_f32 = 1e-5;
    cs.push_back(c);
  }
  {
    OpCase c;
    c.name = "bce_on_probabilities";
    c.input_shapes = {Shape{8}, Shape{8}};
    c.run = [](const std::vector<Tensor>& in) {
      return std::vector<Tensor>{kernels::bce_forward(kernels::unary(kernels::UnaryOp::sigmoid, in[0]),
                                                      kernels::unary(kernels::UnaryOp::sigmoid, in[1]))};
    };
    c.reference = [](const std::vector<HostValues>& in) {
      double s = 0;
      for (std::size_t i = 0; i < 8; ++i) {
        const double p = 1 / (1 + std::exp(-in[0][i])), t = 1 / (1 + std::exp(-in[1][i]));
        s += -(t * std::log(p) + (1 - t) * std::log(1 - p));
      }
      return std::vector<HostValues>{{s / 8}};
    };
    c.tol_f32 = 1e-5;
    cs.push_back(c);
  }
  return cs;
}

}  // namespace

LN_OP_TABLE(Conv, conv_cases);

LN_OP_TABLE(Nn, nn_cases);

TEST(NnOps, MaxPoolTiesPickTheFirstMaximumAndNaNWins) {
  // One 3x3 window of equal values: the index is the first tap.
  Tensor idx;
  const Tensor x = ones(Shape{1, 3, 3, 1});
  kernels::max_pool2d_forward(x, Pool2dParams::make(3, 1, 0), idx);
  EXPECT_EQ(idx.to_vector<int>()[0], 0);
  std::vector<float> v(9, 1.f);
  v[4] = NAN;
  const Tensor y = kernels::max_pool2d_forward(Tensor::from_vector(v, Shape{1, 3, 3, 1}), Pool2dParams::make(3, 1, 0), idx);
  EXPECT_TRUE(std::isnan(y.item()));
  EXPECT_EQ(idx.to_vector<int>()[0], 4);
}

// Inference skips the indices: the same maxima, NaNs included, over many channels (the vectorised loop)
// and padded windows.
TEST(NnOps, MaxPoolWithoutIndicesGivesTheSameMaxima) {
  Tensor x = Tensor::empty(Shape{2, 9, 11, 37});
  kernels::random_fill(x, kernels::RandomDist::normal, 7, 0, 0.f, 1.f);
  float* p = x.data<float>();
  p[5] = NAN;
  p[37 * 20 + 3] = NAN;
  p[37 * 21 + 3] = INFINITY;
  for (const Pool2dParams& params : {Pool2dParams::make(3, 2, 0), Pool2dParams::make(3, 1, 1)}) {
    Tensor idx, none;
    const Tensor with = kernels::max_pool2d_forward(x, params, idx, true);
    const Tensor without = kernels::max_pool2d_forward(x, params, none, false);
    EXPECT_TRUE(idx.defined());
    EXPECT_FALSE(none.defined());
    const std::vector<float> a = with.to_vector<float>(), b = without.to_vector<float>();
    const std::vector<int> ix = idx.to_vector<int>();
    ASSERT_EQ(a.size(), b.size());
    int nans = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      ASSERT_TRUE(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]))) << i;
      // The index points at the value returned.
      const std::size_t c = i % 37, n = i / (37 * with.size(1) * with.size(2));
      const float at = p[(n * 9 * 11 + static_cast<std::size_t>(ix[i])) * 37 + c];
      ASSERT_TRUE(at == a[i] || (std::isnan(at) && std::isnan(a[i]))) << i;
      nans += std::isnan(a[i]);
    }
    EXPECT_GT(nans, 0);
  }
}

TEST(NnOps, CrossEntropyRejectsBadLabelsWithAClearMessage) {
  kernels::CrossEntropyState st;
  const Tensor logits = zeros(Shape{2, 3});
  try {
    kernels::softmax_cross_entropy_forward(logits, Tensor::from_vector<std::int64_t>({0, 3}, Shape{2}), Tensor(), 0.f, st);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label 3 of sample 1 is outside [0, 3)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(kernels::softmax_cross_entropy_forward(logits, zeros(Shape{2}), Tensor(), 0.f, st), Error);
}

TEST(NnOps, ShapeErrorsNameBothSides) {
  try {
    kernels::conv2d_forward(zeros(Shape{1, 5, 5, 3}), zeros(Shape{4, 3, 3, 2}), Tensor(), {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 channels"), std::string::npos) << e.what();
  }
  EXPECT_THROW(kernels::linear_forward(zeros(Shape{2, 4}), zeros(Shape{3, 5}), Tensor()), Error);
  Tensor idx;
  EXPECT_THROW(kernels::max_pool2d_forward(zeros(Shape{1, 2, 2, 1}), Pool2dParams::make(3, 2, 0), idx), Error);
}

TEST(NnOps, DropoutMaskDependsOnlyOnSeedStreamAndIndex) {
  const Tensor x = ones(Shape{10000});
  const auto a = kernels::dropout_forward(x, 0.4f, 3, 9).to_vector<float>();
  const auto b = kernels::dropout_forward(x, 0.4f, 3, 9).to_vector<float>();
  const auto c = kernels::dropout_forward(x, 0.4f, 3, 10).to_vector<float>();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  int kept = 0;
  for (float v : a) kept += v != 0.f;
  EXPECT_NEAR(kept / 10000.0, 0.6, 0.02);
  // Backward applies the same mask.
  EXPECT_EQ(kernels::dropout_backward(x, 0.4f, 3, 9).to_vector<float>(), a);
}
