// Element-wise ops and reductions: one table row per case, run on the CPU against float64 references
// and on CUDA against the CPU (tests/op_harness.h).
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/elementwise.h"
#include "kernels/tensor_ops.h"
#include "op_harness.h"

using namespace livernet;
using namespace livernet::testing;
using kernels::BinaryOp;
using kernels::ReduceOp;
using kernels::UnaryOp;

namespace {

OpCase unary_case(const std::string& name, UnaryOp op, double (*ref)(double), std::function<double(double)> tr = {}) {
  OpCase c;
  c.name = name;
  c.input_shapes = {Shape{3, 7, 5, 11}};  // odd sizes: the vector tail paths run
  c.run = [op](const std::vector<Tensor>& in) { return std::vector<Tensor>{kernels::unary(op, in[0])}; };
  c.reference = [ref](const std::vector<HostValues>& in) {
    HostValues out(in[0].size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = ref(in[0][i]);
    return std::vector<HostValues>{out};
  };
  c.input_transform = std::move(tr);
  return c;
}

OpCase binary_case(const std::string& name, BinaryOp op, double (*ref)(double, double)) {
  OpCase c;
  c.name = name;
  c.input_shapes = {Shape{2, 9, 13, 3}, Shape{2, 9, 13, 3}};
  c.run = [op](const std::vector<Tensor>& in) { return std::vector<Tensor>{kernels::binary(op, in[0], in[1])}; };
  c.reference = [ref](const std::vector<HostValues>& in) {
    HostValues out(in[0].size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = ref(in[0][i], in[1][i]);
    return std::vector<HostValues>{out};
  };
  return c;
}

// Reduction over `axes` of `shape`, reference by explicit index arithmetic.
OpCase reduce_case(const std::string& name, ReduceOp op, Shape shape, std::vector<int> axes) {
  OpCase c;
  c.name = name;
  c.input_shapes = {shape};
  c.run = [op, axes](const std::vector<Tensor>& in) { return std::vector<Tensor>{kernels::reduce(op, in[0], axes)}; };
  c.reference = [op, shape, axes](const std::vector<HostValues>& in) {
    const int nd = shape.size();
    std::vector<bool> red(nd, false);
    for (int a : axes) red[a < 0 ? a + nd : a] = true;
    std::int64_t out_n = 1, r = 1;
    for (int d = 0; d < nd; ++d) (red[d] ? r : out_n) *= shape[d];
    const double init = op == ReduceOp::max ? -INFINITY : op == ReduceOp::min ? INFINITY : 0.0;
    HostValues out(static_cast<std::size_t>(out_n), init);
    std::vector<std::int64_t> idx(nd, 0);
    for (std::size_t i = 0; i < in[0].size(); ++i) {
      std::int64_t o = 0;
      for (int d = 0; d < nd; ++d)
        if (!red[d]) o = o * shape[d] + idx[d];
      const double v = in[0][i];
      double& acc = out[o];
      acc = op == ReduceOp::max ? std::max(acc, v) : op == ReduceOp::min ? std::min(acc, v) : acc + v;
      for (int d = nd - 1; d >= 0; --d) {
        if (++idx[d] < shape[d]) break;
        idx[d] = 0;
      }
    }
    if (op == ReduceOp::mean)
      for (double& v : out) v /= static_cast<double>(r);
    return std::vector<HostValues>{out};
  };
  c.tol_f32 = 1e-6;
  c.tol_half = 1e-2;
  return c;
}

std::vector<OpCase> elementwise_cases() {
  std::vector<OpCase> cs;
  cs.push_back(unary_case("neg", UnaryOp::neg, [](double x) { return -x; }));
  cs.push_back(unary_case("abs", UnaryOp::abs, [](double x) { return std::fabs(x); }));
  cs.push_back(unary_case("relu", UnaryOp::relu, [](double x) { return x > 0 ? x : 0.0; }));
  cs.push_back(unary_case("exp", UnaryOp::exp, [](double x) { return std::exp(x); }));
  cs.push_back(unary_case("log", UnaryOp::log, [](double x) { return std::log(x); }, [](double x) { return std::fabs(x) + 0.1; }));
  cs.push_back(unary_case("sqrt", UnaryOp::sqrt, [](double x) { return std::sqrt(x); }, [](double x) { return std::fabs(x); }));
  cs.push_back(unary_case("rsqrt", UnaryOp::rsqrt, [](double x) { return 1 / std::sqrt(x); }, [](double x) { return std::fabs(x) + 0.5; }));
  cs.push_back(unary_case("sigmoid", UnaryOp::sigmoid, [](double x) { return 1 / (1 + std::exp(-x)); }, [](double x) { return 8 * x; }));
  cs.push_back(unary_case("tanh", UnaryOp::tanh, [](double x) { return std::tanh(x); }));
  cs.push_back(unary_case("square", UnaryOp::square, [](double x) { return x * x; }));
  cs.push_back(unary_case("reciprocal", UnaryOp::reciprocal, [](double x) { return 1 / x; }, [](double x) { return x > 0 ? x + 0.5 : x - 0.5; }));
  cs.push_back(binary_case("add", BinaryOp::add, [](double a, double b) { return a + b; }));
  cs.push_back(binary_case("sub", BinaryOp::sub, [](double a, double b) { return a - b; }));
  cs.push_back(binary_case("mul", BinaryOp::mul, [](double a, double b) { return a * b; }));
  cs.push_back(binary_case("maximum", BinaryOp::maximum, [](double a, double b) { return std::max(a, b); }));
  cs.push_back(binary_case("minimum", BinaryOp::minimum, [](double a, double b) { return std::min(a, b); }));
  {
    OpCase c = binary_case("div", BinaryOp::div, [](double a, double b) { return a / b; });
    c.input_transform = [](double x) { return x > 0 ? x + 0.5 : x - 0.5; };
    cs.push_back(c);
  }
  {
    OpCase c;
    c.name = "axpby";
    c.input_shapes = {Shape{5, 33}, Shape{5, 33}};
    c.run = [](const std::vector<Tensor>& in) {
      Tensor y = in[1].clone();
      kernels::axpby(0.75f, in[0], -1.5f, y);
      return std::vector<Tensor>{y};
    };
    c.reference = [](const std::vector<HostValues>& in) {
      HostValues out(in[0].size());
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = 0.75 * in[0][i] - 1.5 * in[1][i];
      return std::vector<HostValues>{out};
    };
    cs.push_back(c);
  }
  {
    OpCase c;
    c.name = "scale";
    c.input_shapes = {Shape{1, 1, 1, 1031}};
    c.run = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{kernels::scale(in[0], -3.f)}; };
    c.reference = [](const std::vector<HostValues>& in) {
      HostValues out(in[0]);
      for (double& v : out) v *= -3;
      return std::vector<HostValues>{out};
    };
    cs.push_back(c);
  }
  {
    OpCase c;
    c.name = "cast_roundtrip";
    c.input_shapes = {Shape{3, 17}};
    c.dtypes = {DType::f32};
    c.run = [](const std::vector<Tensor>& in) {
      return std::vector<Tensor>{to_dtype(to_dtype(to_dtype(in[0], DType::f16), DType::bf16), DType::f32)};
    };
    c.reference = [](const std::vector<HostValues>& in) {
      HostValues out(in[0].size());
      for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = bf16_bits_to_float(float_to_bf16_bits(f16_bits_to_float(float_to_f16_bits(static_cast<float>(in[0][i])))));
      return std::vector<HostValues>{out};
    };
    c.tol_f32 = 0;  // exact
    cs.push_back(c);
  }
  return cs;
}

std::vector<OpCase> reduction_cases() {
  std::vector<OpCase> cs;
  cs.push_back(reduce_case("sum_all", ReduceOp::sum, Shape{3, 5, 7, 11}, {0, 1, 2, 3}));
  cs.push_back(reduce_case("mean_all_large", ReduceOp::mean, Shape{300001}, {0}));
  cs.push_back(reduce_case("max_all", ReduceOp::max, Shape{4, 9, 9, 6}, {0, 1, 2, 3}));
  cs.push_back(reduce_case("min_rows", ReduceOp::min, Shape{6, 1000}, {1}));
  cs.push_back(reduce_case("sum_per_channel_nhwc", ReduceOp::sum, Shape{4, 13, 13, 37}, {0, 1, 2}));
  cs.push_back(reduce_case("mean_per_channel_long", ReduceOp::mean, Shape{64, 30, 30, 3}, {0, 1, 2}));
  cs.push_back(reduce_case("mean_spatial_nhwc", ReduceOp::mean, Shape{3, 8, 8, 70}, {1, 2}));
  cs.push_back(reduce_case("sum_first_and_last", ReduceOp::sum, Shape{5, 6, 7}, {0, 2}));
  cs.push_back(reduce_case("max_middle", ReduceOp::max, Shape{3, 50, 40}, {-2}));
  return cs;
}

}  // namespace

LN_OP_TABLE(Elementwise, elementwise_cases);

LN_OP_TABLE(Reduction, reduction_cases);

TEST(Reduction, KeepdimAndShapes) {
  const Tensor x = randn(Shape{2, 3, 4, 5}, 3);
  EXPECT_EQ(kernels::sum(x, {1, 2}).shape(), (Shape{2, 5}));
  EXPECT_EQ(kernels::sum(x, {1, 2}, true).shape(), (Shape{2, 1, 1, 5}));
  EXPECT_EQ(kernels::sum(x).shape(), Shape{});
  EXPECT_EQ(kernels::sum(to_dtype(x, DType::bf16)).dtype(), DType::f32) << "reductions return f32";
  EXPECT_THROW(kernels::sum(x, {4}), Error);
  EXPECT_THROW(kernels::sum(x, {1, 1}), Error);
  EXPECT_DOUBLE_EQ(kernels::sum(zeros(Shape{0, 3})).item(), 0.0);
  EXPECT_THROW(kernels::max(zeros(Shape{0})), Error);
}

TEST(Elementwise, OutputMayAliasAnInput) {
  Tensor a = arange(0, 10);
  const Tensor b = ones(Shape{10});
  kernels::binary(BinaryOp::add, a, b, a);
  EXPECT_EQ(a.to_vector<float>()[9], 10.f);
}

TEST(Elementwise, NaNPropagatesThroughMaximum) {
  const Tensor a = Tensor::from_vector<float>({NAN, 1.f}, Shape{2});
  const Tensor b = Tensor::from_vector<float>({1.f, NAN}, Shape{2});
  const auto m = kernels::binary(BinaryOp::maximum, a, b).to_vector<float>();
  EXPECT_TRUE(std::isnan(m[0]));
  EXPECT_TRUE(std::isnan(m[1]));
  EXPECT_TRUE(std::isnan(kernels::max(a).item()));
}
