// The rows of tests/op_cases.h: the family functions, the tests' table and the benchmarks' table.
#include "op_cases.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/philox.h"
#include "kernels/elementwise.h"
#include "kernels/tensor_ops.h"
#include "layers/functional.h"
#include "reference_ops.h"

namespace livernet::testing {

using kernels::BinaryOp;
using kernels::Conv2dParams;
using kernels::Pool2dParams;
using kernels::ReduceOp;
using kernels::UnaryOp;
using ref::cp;

bool OpCase::is_param(std::size_t input) const {
  return std::find(params.begin(), params.end(), static_cast<int>(input)) != params.end();
}

std::vector<Tensor> make_inputs(const OpCase& c, DType dtype, Device device) {
  std::vector<Tensor> in;
  for (std::size_t i = 0; i < c.input_shapes.size(); ++i) {
    Tensor t = randn(c.input_shapes[i], /*seed=*/1000 + i, /*stream=*/0);
    if (c.input_transform) {
      std::vector<float> v = t.to_vector<float>();
      for (float& x : v) x = static_cast<float>(c.input_transform(x, i));
      t = Tensor::from_vector(v, c.input_shapes[i]);
    }
    in.push_back(to_dtype(t, c.keeps_f32(i) ? DType::f32 : dtype).to(device));
  }
  return in;
}

namespace {

// The same map for every input.
std::function<double(double, std::size_t)> every_input(std::function<double(double)> f) {
  return [f = std::move(f)](double x, std::size_t) { return f(x); };
}

double away_from_zero(double x) { return x > 0 ? x + 0.05 : x - 0.05; }

std::vector<Tensor> one(Tensor t) { return std::vector<Tensor>{std::move(t)}; }

double elements(const Shape& s) { return static_cast<double>(s.numel()); }

}  // namespace

// ---- the families -------------------------------------------------------------------------------------

OpCase conv_case(const std::string& name, Shape xs, Shape ws, Conv2dParams p, bool bias) {
  OpCase c;
  c.name = name;
  c.input_shapes = {xs, ws};
  if (bias) c.input_shapes.push_back(Shape{ws[0]});
  c.run = [p](const std::vector<Tensor>& in) {
    return one(kernels::conv2d_forward(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), p));
  };
  c.reference = [xs, ws, p](const std::vector<HostValues>& in) {
    return std::vector<HostValues>{ref::conv2d(in[0], xs, in[1], ws, in.size() > 2 ? &in[2] : nullptr, p)};
  };
  c.tol_f32 = 2e-5;
  c.tol_half = 2e-2;
  c.differentiable = [p](const std::vector<Tensor>& in) {
    return F::conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), p);
  };
  c.params = bias ? std::vector<int>{1, 2} : std::vector<int>{1};
  const double out = static_cast<double>(xs[0]) * p.out_h(xs[1], ws[1]) * p.out_w(xs[2], ws[2]) * ws[0];
  c.flops = 2.0 * out * ws[1] * ws[2] * ws[3];
  char label[96];
  std::snprintf(label, sizeof label, "%lldx%lld %lld->%lld %lldx%lld s%d", static_cast<long long>(xs[1]),
                static_cast<long long>(xs[2]), static_cast<long long>(xs[3]), static_cast<long long>(ws[0]),
                static_cast<long long>(ws[1]), static_cast<long long>(ws[2]), p.stride_h);
  c.label = label;
  return c;
}

OpCase batch_norm_case(const std::string& name, Shape xs, bool train, bool gamma, bool relu) {
  OpCase c;
  c.name = name;
  const std::int64_t C = xs.back();
  c.input_shapes = {xs, Shape{C}, Shape{C}, Shape{C}, Shape{C}};  // x, gamma, beta, running mean, running var
  c.input_transform = [](double x, std::size_t i) { return i == 4 ? std::fabs(x) : x; };
  c.stays_f32 = {false, true, true, true, true};
  // The running statistics are inputs that the op updates in place (train mode) and outputs.
  c.run = [train, gamma, relu](const std::vector<Tensor>& in) {
    Tensor rm = in[3], rv = in[4];
    kernels::BatchNormState st;
    const Tensor g = gamma ? in[1] : Tensor();
    Tensor y = train ? kernels::batch_norm_train(in[0], g, in[2], rm, rv, 0.1f, 1e-3f, relu, st)
                     : kernels::batch_norm_eval(in[0], g, in[2], rm, rv, 1e-3f, relu, st);
    return std::vector<Tensor>{y, rm, rv, st.save_mean, st.save_invstd};
  };
  c.reference = [C, train, gamma, relu](const std::vector<HostValues>& in) {
    HostValues rm = in[3], rv = in[4];
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
      var = in[4];
    }
    HostValues invstd(C);
    for (std::int64_t k = 0; k < C; ++k) invstd[k] = 1 / std::sqrt(var[k] + 1e-3);
    const HostValues y = ref::bn_apply(in[0], C, mean, var, gamma ? &in[1] : nullptr, in[2], 1e-3, relu);
    return std::vector<HostValues>{y, rm, rv, mean, invstd};
  };
  c.tol_f32 = 2e-5;
  c.tol_half = 2e-2;
  c.differentiable = [train, gamma, relu](const std::vector<Tensor>& in) {
    Tensor rm = in[3], rv = in[4];
    return F::batch_norm(in[0], gamma ? in[1] : Tensor(), in[2], rm, rv, train, 0.1f, 1e-3f, relu);
  };
  c.grad_inputs = {true, gamma, true, false, false};
  c.params = gamma ? std::vector<int>{1, 2} : std::vector<int>{2};
  // With relu the finite differences straddle the kink wherever a pre-activation lies within eps of 0,
  // and no input transform can prevent it (batch statistics re-centre every channel; beta moves a whole
  // channel): the checks that straddle one are recognised and skipped (OpCase::kinks).
  c.kinks = relu;
  c.grad_tol = 2e-2;
  // forward reads x twice (statistics, then apply) and writes y; backward reads dy, x, y twice, writes dx
  c.bytes_forward = 3 * elements(xs);
  c.bytes_backward = 7 * elements(xs);
  c.label = std::to_string(xs[1]) + "x" + std::to_string(xs.size() > 2 ? xs[2] : 1) + "x" + std::to_string(C);
  return c;
}

OpCase pool_case(const std::string& name, Shape xs, Pool2dParams p, bool is_max) {
  OpCase c;
  c.name = name;
  c.input_shapes = {xs};
  if (is_max) c.input_transform = every_input([](double x) { return 100 * x; });  // no ties within eps
  c.run = [p, is_max](const std::vector<Tensor>& in) {
    Tensor idx;
    return one(is_max ? kernels::max_pool2d_forward(in[0], p, idx) : kernels::avg_pool2d_forward(in[0], p));
  };
  c.reference = [xs, p, is_max](const std::vector<HostValues>& in) {
    return std::vector<HostValues>{ref::pool2d(in[0], xs, p, is_max)};
  };
  c.differentiable = [p, is_max](const std::vector<Tensor>& in) {
    return is_max ? F::max_pool2d(in[0], p) : F::avg_pool2d(in[0], p);
  };
  c.bytes_forward = 2 * elements(xs);
  c.bytes_backward = 2 * elements(xs);
  c.label = std::to_string(xs[1]) + "x" + std::to_string(xs[2]) + "x" + std::to_string(xs[3]);
  return c;
}

OpCase global_avg_pool_case(const std::string& name, Shape xs) {
  OpCase c;
  c.name = name;
  c.input_shapes = {xs};
  c.run = [](const std::vector<Tensor>& in) { return one(kernels::global_avg_pool_forward(in[0])); };
  c.reference = [xs](const std::vector<HostValues>& in) {
    const std::int64_t N = xs[0], HW = xs[1] * xs[2], C = xs[3];
    HostValues y(static_cast<std::size_t>(N * C), 0.0);
    for (std::size_t i = 0; i < in[0].size(); ++i) {
      const std::int64_t n = static_cast<std::int64_t>(i) / (HW * C), k = static_cast<std::int64_t>(i) % C;
      y[n * C + k] += in[0][i] / static_cast<double>(HW);
    }
    return std::vector<HostValues>{y};
  };
  c.differentiable = [](const std::vector<Tensor>& in) { return F::global_avg_pool(in[0]); };
  c.bytes_forward = elements(xs);
  c.bytes_backward = elements(xs);
  c.label = std::to_string(xs[1]) + "x" + std::to_string(xs[2]) + "x" + std::to_string(xs[3]);
  return c;
}

OpCase concat_case(const std::string& name, std::vector<Shape> parts) {
  OpCase c;
  c.name = name;
  c.input_shapes = parts;
  std::vector<std::int64_t> widths;
  double total = 0;
  for (const Shape& s : parts) {
    widths.push_back(s.back());
    total += elements(s);
  }
  c.run = [widths](const std::vector<Tensor>& in) {
    Tensor y = kernels::concat(in, -1);
    std::vector<Tensor> out{y};
    for (Tensor& t : kernels::split(y, y.dim() - 1, widths)) out.push_back(t);
    return out;
  };
  c.reference = [widths](const std::vector<HostValues>& in) {
    const std::size_t rows = in[0].size() / static_cast<std::size_t>(widths[0]);
    HostValues y;
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t k = 0; k < in.size(); ++k) {
        const std::size_t w = static_cast<std::size_t>(widths[k]);
        y.insert(y.end(), in[k].begin() + r * w, in[k].begin() + (r + 1) * w);
      }
    std::vector<HostValues> out{y};
    out.insert(out.end(), in.begin(), in.end());
    return out;
  };
  c.tol_f32 = 0;
  c.tol_half = 0;
  c.differentiable = [](const std::vector<Tensor>& in) { return F::concat(in, -1); };
  c.bytes_forward = 2 * total;
  c.bytes_backward = 2 * total;
  c.label = std::to_string(parts.size()) + " parts of " + std::to_string(parts[0].back()) + " channels";
  return c;
}

namespace {

OpCase unary_case(const std::string& name, UnaryOp op, double (*reference)(double),
                  std::function<double(double)> transform = {}) {
  OpCase c;
  c.name = name;
  c.input_shapes = {Shape{3, 7, 5, 11}};  // odd sizes: the vector tail paths run
  if (transform) c.input_transform = every_input(std::move(transform));
  c.run = [op](const std::vector<Tensor>& in) { return one(kernels::unary(op, in[0])); };
  c.reference = [reference](const std::vector<HostValues>& in) {
    HostValues out(in[0].size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = reference(in[0][i]);
    return std::vector<HostValues>{out};
  };
  c.differentiable = [op](const std::vector<Tensor>& in) { return F::unary(op, in[0]); };
  c.grad_eps = 1e-3;
  return c;
}

OpCase binary_case(const std::string& name, BinaryOp op, double (*reference)(double, double)) {
  OpCase c;
  c.name = name;
  c.input_shapes = {Shape{2, 9, 13, 3}, Shape{2, 9, 13, 3}};
  c.run = [op](const std::vector<Tensor>& in) { return one(kernels::binary(op, in[0], in[1])); };
  c.reference = [reference](const std::vector<HostValues>& in) {
    HostValues out(in[0].size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = reference(in[0][i], in[1][i]);
    return std::vector<HostValues>{out};
  };
  if (op == BinaryOp::add) c.differentiable = [](const std::vector<Tensor>& in) { return F::add(in[0], in[1]); };
  if (op == BinaryOp::sub) c.differentiable = [](const std::vector<Tensor>& in) { return F::sub(in[0], in[1]); };
  if (op == BinaryOp::mul) c.differentiable = [](const std::vector<Tensor>& in) { return F::mul(in[0], in[1]); };
  return c;
}

// Reduction over `axes` of `shape`, reference by explicit index arithmetic.
OpCase reduce_case(const std::string& name, ReduceOp op, Shape shape, std::vector<int> axes) {
  OpCase c;
  c.name = name;
  c.input_shapes = {shape};
  c.run = [op, axes](const std::vector<Tensor>& in) { return one(kernels::reduce(op, in[0], axes)); };
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

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

void add_conv_cases(std::vector<OpCase>& cs) {
  cs.push_back(conv_case("conv3x3_stride2_valid", Shape{2, 11, 9, 3}, Shape{5, 3, 3, 3}, cp(2, 0, 0, 0, 0), false));
  cs.push_back(conv_case("conv3x3_same_bias", Shape{2, 7, 8, 4}, Shape{6, 3, 3, 4}, cp(1, 1, 1, 1, 1), true));
  cs.push_back(conv_case("conv1x7", Shape{1, 9, 10, 5}, Shape{4, 1, 7, 5}, cp(1, 0, 0, 3, 3), false));
  cs.push_back(conv_case("conv7x1", Shape{2, 10, 6, 3}, Shape{5, 7, 1, 3}, cp(1, 3, 3, 0, 0), false));
  cs.push_back(conv_case("conv1x3_3x1_pair", Shape{1, 5, 5, 8}, Shape{3, 1, 3, 8}, cp(1, 0, 0, 1, 1), false));
  cs.push_back(conv_case("conv5x5_same", Shape{1, 9, 9, 3}, Shape{4, 5, 5, 3}, cp(1, 2, 2, 2, 2), false));
  cs.push_back(conv_case("conv1x1", Shape{3, 4, 5, 16}, Shape{7, 1, 1, 16}, cp(1, 0, 0, 0, 0), true));
  cs.push_back(conv_case("conv_asymmetric_pad", Shape{2, 8, 7, 3}, Shape{4, 3, 3, 3}, cp(2, 0, 1, 1, 0), true));
  cs.push_back(conv_case("conv_dilated", Shape{1, 12, 11, 2}, Shape{3, 3, 3, 2}, cp(1, 2, 2, 2, 2, 2), false));
  cs.push_back(conv_case("conv_grouped", Shape{2, 6, 6, 6}, Shape{9, 3, 3, 2}, cp(1, 1, 1, 1, 1, 1, 3), true));
  cs.push_back(conv_case("conv_dilated_grouped", Shape{1, 7, 7, 4}, Shape{6, 3, 3, 2}, cp(1, 2, 2, 2, 2, 2, 2), false));
}

void add_norm_pool_copy_cases(std::vector<OpCase>& cs) {
  cs.push_back(batch_norm_case("bn_train_gamma", Shape{3, 5, 4, 7}, true, true, false));
  cs.push_back(batch_norm_case("bn_train_keras_no_gamma_relu", Shape{2, 6, 5, 9}, true, false, true));
  cs.push_back(batch_norm_case("bn_eval_relu", Shape{4, 3, 3, 6}, false, true, true));
  cs.push_back(batch_norm_case("bn_train_2d", Shape{10, 33}, true, true, false));
  cs.push_back(pool_case("maxpool3x3_s2", Shape{2, 11, 10, 5}, Pool2dParams::make(3, 2, 0), true));
  cs.push_back(pool_case("maxpool3x3_s1_pad1", Shape{1, 6, 7, 4}, Pool2dParams::make(3, 1, 1), true));
  cs.push_back(pool_case("avgpool3x3_s1_pad1_include_pad", Shape{2, 7, 6, 5}, Pool2dParams::make(3, 1, 1, true), false));
  cs.push_back(pool_case("avgpool3x3_s1_pad1_exclude_pad", Shape{2, 7, 6, 5}, Pool2dParams::make(3, 1, 1, false), false));
  cs.push_back(pool_case("avgpool5x5_s3", Shape{1, 17, 17, 3}, Pool2dParams::make(5, 3, 0), false));
  cs.push_back(global_avg_pool_case("global_avg_pool", Shape{3, 5, 6, 7}));
  cs.push_back(concat_case("concat_channels_and_split", {Shape{2, 3, 4, 5}, Shape{2, 3, 4, 2}, Shape{2, 3, 4, 7}}));
  {
    OpCase c;
    c.name = "concat_axis0";
    c.input_shapes = {Shape{2, 3}, Shape{1, 3}};
    c.run = [](const std::vector<Tensor>& in) { return one(kernels::concat(in, 0)); };
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
}

void add_linear_cases(std::vector<OpCase>& cs) {
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    OpCase c;
    c.name = std::string("gemm_") + (ta ? "T" : "N") + (tb ? "T" : "N");
    const Shape as = ta ? Shape{13, 6} : Shape{6, 13}, bs = tb ? Shape{9, 13} : Shape{13, 9};
    c.input_shapes = {as, bs};
    c.run = [ta, tb](const std::vector<Tensor>& in) { return one(kernels::matmul(in[0], ta, in[1], tb)); };
    c.reference = [as, bs, ta, tb](const std::vector<HostValues>& in) {
      return std::vector<HostValues>{ref::matmul(in[0], as, ta, in[1], bs, tb)};
    };
    c.tol_f32 = 1e-5;
    c.tol_half = 2e-2;
    cs.push_back(c);
  }
  OpCase c;
  c.name = "linear_with_bias";
  c.input_shapes = {Shape{5, 12}, Shape{7, 12}, Shape{7}};
  c.run = [](const std::vector<Tensor>& in) { return one(kernels::linear_forward(in[0], in[1], in[2])); };
  c.reference = [](const std::vector<HostValues>& in) {
    HostValues y = ref::matmul(in[0], Shape{5, 12}, false, in[1], Shape{7, 12}, true);
    for (std::size_t i = 0; i < y.size(); ++i) y[i] += in[2][i % 7];
    return std::vector<HostValues>{y};
  };
  c.tol_f32 = 1e-5;
  c.tol_half = 2e-2;
  c.differentiable = [](const std::vector<Tensor>& in) { return F::linear(in[0], in[1], in[2]); };
  c.params = {1, 2};
  cs.push_back(c);
}

void add_loss_cases(std::vector<OpCase>& cs) {
  {
    OpCase c;
    c.name = "dropout_p03";
    c.input_shapes = {Shape{4, 1000}};
    c.run = [](const std::vector<Tensor>& in) { return one(kernels::dropout_forward(in[0], 0.3f, 77, 5)); };
    c.reference = [](const std::vector<HostValues>& in) {
      HostValues y(in[0].size());
      for (std::size_t i = 0; i < y.size(); ++i)
        y[i] = philox_uniform_at(77, 5, i, 0.f, 1.f) >= 0.3f ? in[0][i] / 0.7 : 0.0;
      return std::vector<HostValues>{y};
    };
    c.differentiable = [](const std::vector<Tensor>& in) { return F::dropout(in[0], 0.3f, true, 77, 5); };
    cs.push_back(c);
  }
  for (int variant = 0; variant < 4; ++variant) {
    const bool weighted = variant & 1;
    const float smoothing = (variant & 2) ? 0.2f : 0.f;
    OpCase c;
    c.name = std::string("cross_entropy") + (weighted ? "_weighted" : "") + (smoothing > 0 ? "_smoothed" : "");
    c.input_shapes = {Shape{6, 4}, Shape{4}};  // logits, log class weights
    static const std::vector<std::int64_t> labels{0, 3, 1, 1, 2, 3};
    // Labels as int64 and, in the last variant, as int32: both are accepted.
    const bool i32 = variant == 3;
    auto label_tensor = [i32](Device d) {
      return i32 ? Tensor::from_vector(std::vector<std::int32_t>(labels.begin(), labels.end()), Shape{6}, d)
                 : Tensor::from_vector(labels, Shape{6}, d);
    };
    auto class_weights = [weighted](const Tensor& log_w) {
      return weighted ? kernels::unary(UnaryOp::exp, to_dtype(log_w, DType::f32)) : Tensor();
    };
    c.run = [label_tensor, class_weights, smoothing](const std::vector<Tensor>& in) {
      kernels::CrossEntropyState st;
      Tensor loss = kernels::softmax_cross_entropy_forward(in[0], label_tensor(in[0].device()), class_weights(in[1]),
                                                           smoothing, st);
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
    c.differentiable = [label_tensor, class_weights, smoothing](const std::vector<Tensor>& in) {
      return F::cross_entropy(in[0], label_tensor(in[0].device()), class_weights(in[1]), smoothing);
    };
    c.grad_inputs = {true, false};
    c.grad_eps = 1e-3;
    cs.push_back(c);
  }
  {
    OpCase c;
    c.name = "bce_with_logits_weighted";
    c.input_shapes = {Shape{5, 3}, Shape{5, 3}, Shape{5, 3}};  // logits / 4, targets' logits, weights
    c.run = [](const std::vector<Tensor>& in) {
      const Tensor t = kernels::unary(UnaryOp::sigmoid, in[1]);
      const Tensor w = kernels::unary(UnaryOp::abs, in[2]);
      return one(kernels::bce_with_logits_forward(kernels::scale(in[0], 4.f), t, w));
    };
    c.reference = [](const std::vector<HostValues>& in) {
      double s = 0;
      for (std::size_t i = 0; i < 15; ++i) {
        const double z = 4 * in[0][i], t = sigmoid(in[1][i]), w = std::fabs(in[2][i]);
        s += w * -(t * std::log(sigmoid(z)) + (1 - t) * std::log(1 - sigmoid(z)));
      }
      return std::vector<HostValues>{{s / 15}};
    };
    c.tol_f32 = 1e-5;
    c.differentiable = [](const std::vector<Tensor>& in) {
      return F::binary_cross_entropy_with_logits(F::scale(in[0], 4.f), kernels::unary(UnaryOp::sigmoid, in[1]),
                                                 kernels::unary(UnaryOp::abs, in[2]));
    };
    c.grad_inputs = {true, false, false};
    c.grad_eps = 1e-3;
    cs.push_back(c);
  }
  {
    OpCase c;
    c.name = "sigmoid_then_bce";
    c.input_shapes = {Shape{8}, Shape{8}};
    c.run = [](const std::vector<Tensor>& in) {
      return one(kernels::bce_forward(kernels::unary(UnaryOp::sigmoid, in[0]), kernels::unary(UnaryOp::sigmoid, in[1])));
    };
    c.reference = [](const std::vector<HostValues>& in) {
      double s = 0;
      for (std::size_t i = 0; i < 8; ++i) {
        const double p = sigmoid(in[0][i]), t = sigmoid(in[1][i]);
        s += -(t * std::log(p) + (1 - t) * std::log(1 - p));
      }
      return std::vector<HostValues>{{s / 8}};
    };
    c.tol_f32 = 1e-5;
    c.differentiable = [](const std::vector<Tensor>& in) {
      return F::binary_cross_entropy(F::sigmoid(in[0]), kernels::unary(UnaryOp::sigmoid, in[1]));
    };
    c.grad_inputs = {true, false};
    c.grad_eps = 1e-3;
    cs.push_back(c);
  }
}

void add_elementwise_cases(std::vector<OpCase>& cs) {
  cs.push_back(unary_case("neg", UnaryOp::neg, [](double x) { return -x; }));
  cs.push_back(unary_case("abs", UnaryOp::abs, [](double x) { return std::fabs(x); }, away_from_zero));
  cs.push_back(unary_case("relu", UnaryOp::relu, [](double x) { return x > 0 ? x : 0.0; }, away_from_zero));
  cs.push_back(unary_case("exp", UnaryOp::exp, [](double x) { return std::exp(x); }));
  cs.push_back(unary_case("log", UnaryOp::log, [](double x) { return std::log(x); }, [](double x) { return std::fabs(x) + 0.1; }));
  cs.push_back(unary_case("sqrt", UnaryOp::sqrt, [](double x) { return std::sqrt(x); }, [](double x) { return std::fabs(x) + 0.05; }));
  cs.push_back(unary_case("rsqrt", UnaryOp::rsqrt, [](double x) { return 1 / std::sqrt(x); }, [](double x) { return std::fabs(x) + 0.5; }));
  cs.push_back(unary_case("sigmoid", UnaryOp::sigmoid, sigmoid, [](double x) { return 8 * x; }));
  cs.push_back(unary_case("tanh", UnaryOp::tanh, [](double x) { return std::tanh(x); }));
  cs.push_back(unary_case("square", UnaryOp::square, [](double x) { return x * x; }));
  cs.push_back(unary_case("reciprocal", UnaryOp::reciprocal, [](double x) { return 1 / x; },
                          [](double x) { return x > 0 ? x + 0.5 : x - 0.5; }));
  cs.push_back(binary_case("add", BinaryOp::add, [](double a, double b) { return a + b; }));
  cs.push_back(binary_case("sub", BinaryOp::sub, [](double a, double b) { return a - b; }));
  cs.push_back(binary_case("mul", BinaryOp::mul, [](double a, double b) { return a * b; }));
  cs.push_back(binary_case("maximum", BinaryOp::maximum, [](double a, double b) { return std::max(a, b); }));
  cs.push_back(binary_case("minimum", BinaryOp::minimum, [](double a, double b) { return std::min(a, b); }));
  {
    OpCase c = binary_case("div", BinaryOp::div, [](double a, double b) { return a / b; });
    c.input_transform = every_input([](double x) { return x > 0 ? x + 0.5 : x - 0.5; });
    cs.push_back(c);
  }
  {
    OpCase c;
    c.name = "add_sub_mul";
    c.input_shapes = {Shape{4, 5}, Shape{4, 5}, Shape{4, 5}};
    c.run = [](const std::vector<Tensor>& in) {
      return one(kernels::mul(kernels::sub(kernels::add(in[0], in[1]), in[2]), in[0]));
    };
    c.reference = [](const std::vector<HostValues>& in) {
      HostValues y(in[0].size());
      for (std::size_t i = 0; i < y.size(); ++i) y[i] = (in[0][i] + in[1][i] - in[2][i]) * in[0][i];
      return std::vector<HostValues>{y};
    };
    c.tol_half = 2e-2;
    c.differentiable = [](const std::vector<Tensor>& in) { return F::mul(F::sub(F::add(in[0], in[1]), in[2]), in[0]); };
    cs.push_back(c);
  }
  {
    OpCase c;
    c.name = "residual_scale_by";  // x * 1.5 + branch * s, s a learned f32 scale
    c.input_shapes = {Shape{2, 3, 4}, Shape{2, 3, 4}, Shape{1}};
    c.stays_f32 = {false, false, true};
    c.run = [](const std::vector<Tensor>& in) {
      return one(kernels::add(kernels::scale(in[0], 1.5f), kernels::scale_by(in[1], in[2])));
    };
    c.reference = [](const std::vector<HostValues>& in) {
      HostValues y(in[0].size());
      for (std::size_t i = 0; i < y.size(); ++i) y[i] = 1.5 * in[0][i] + in[1][i] * in[2][0];
      return std::vector<HostValues>{y};
    };
    c.tol_half = 2e-2;
    c.differentiable = [](const std::vector<Tensor>& in) {
      return F::add(F::scale(in[0], 1.5f), F::scale_by(in[1], in[2]));
    };
    c.params = {2};
    cs.push_back(c);
  }
  {
    OpCase c;
    c.name = "axpby";
    c.input_shapes = {Shape{5, 33}, Shape{5, 33}};
    c.run = [](const std::vector<Tensor>& in) {
      Tensor y = in[1].clone();
      kernels::axpby(0.75f, in[0], -1.5f, y);
      return one(y);
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
    c.run = [](const std::vector<Tensor>& in) { return one(kernels::scale(in[0], -3.f)); };
    c.reference = [](const std::vector<HostValues>& in) {
      HostValues out(in[0]);
      for (double& v : out) v *= -3;
      return std::vector<HostValues>{out};
    };
    c.differentiable = [](const std::vector<Tensor>& in) { return F::scale(in[0], -3.f); };
    cs.push_back(c);
  }
  {
    OpCase c;
    c.name = "cast_roundtrip";
    c.input_shapes = {Shape{3, 17}};
    c.dtypes = {DType::f32};
    c.run = [](const std::vector<Tensor>& in) {
      return one(to_dtype(to_dtype(to_dtype(in[0], DType::f16), DType::bf16), DType::f32));
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
}

void add_reduction_cases(std::vector<OpCase>& cs) {
  cs.push_back(reduce_case("sum_all", ReduceOp::sum, Shape{3, 5, 7, 11}, {0, 1, 2, 3}));
  cs.push_back(reduce_case("mean_all_large", ReduceOp::mean, Shape{300001}, {0}));
  cs.push_back(reduce_case("max_all", ReduceOp::max, Shape{4, 9, 9, 6}, {0, 1, 2, 3}));
  cs.push_back(reduce_case("min_rows", ReduceOp::min, Shape{6, 1000}, {1}));
  cs.push_back(reduce_case("sum_per_channel_nhwc", ReduceOp::sum, Shape{4, 13, 13, 37}, {0, 1, 2}));
  cs.push_back(reduce_case("mean_per_channel_long", ReduceOp::mean, Shape{64, 30, 30, 3}, {0, 1, 2}));
  cs.push_back(reduce_case("mean_spatial_nhwc", ReduceOp::mean, Shape{3, 8, 8, 70}, {1, 2}));
  cs.push_back(reduce_case("sum_first_and_last", ReduceOp::sum, Shape{5, 6, 7}, {0, 2}));
  cs.push_back(reduce_case("max_middle", ReduceOp::max, Shape{3, 50, 40}, {-2}));
  {
    OpCase c;
    c.name = "sum_mean_reshape";  // sum(x * x) + mean(x viewed as [6, 4]): the differentiable reductions
    c.input_shapes = {Shape{2, 3, 4}};
    c.run = [](const std::vector<Tensor>& in) {
      return one(kernels::add(kernels::sum(kernels::mul(in[0], in[0])), kernels::mean(in[0].reshape({6, 4}))));
    };
    c.reference = [](const std::vector<HostValues>& in) {
      double sq = 0, s = 0;
      for (double v : in[0]) {
        sq += v * v;
        s += v;
      }
      return std::vector<HostValues>{{sq + s / 24}};
    };
    c.differentiable = [](const std::vector<Tensor>& in) {
      return F::add(F::sum(F::mul(in[0], in[0])), F::mean(F::reshape(in[0], {6, 4})));
    };
    cs.push_back(c);
  }
}

}  // namespace

std::vector<OpCase> op_cases() {
  std::vector<OpCase> cs;
  add_conv_cases(cs);
  add_norm_pool_copy_cases(cs);
  add_linear_cases(cs);
  add_loss_cases(cs);
  add_elementwise_cases(cs);
  add_reduction_cases(cs);
  return cs;
}

std::vector<OpCase> inception_layer_cases(std::int64_t n) {
  struct ConvShape {
    int h, cin, cout, kh, kw, stride, ph, pw;
  };
  // The distinct convolutions of InceptionV3 at 299x299 (input size, channels, kernel, stride, padding).
  static const ConvShape kConvs[] = {
      {299, 3, 32, 3, 3, 2, 0, 0},    {149, 32, 32, 3, 3, 1, 0, 0},   {147, 32, 64, 3, 3, 1, 1, 1},
      {73, 64, 80, 1, 1, 1, 0, 0},    {73, 80, 192, 3, 3, 1, 0, 0},   {35, 192, 64, 1, 1, 1, 0, 0},
      {35, 192, 48, 1, 1, 1, 0, 0},   {35, 48, 64, 5, 5, 1, 2, 2},    {35, 64, 96, 3, 3, 1, 1, 1},
      {35, 96, 96, 3, 3, 1, 1, 1},    {35, 192, 32, 1, 1, 1, 0, 0},   {35, 256, 64, 1, 1, 1, 0, 0},
      {35, 256, 48, 1, 1, 1, 0, 0},   {35, 288, 64, 1, 1, 1, 0, 0},   {35, 288, 48, 1, 1, 1, 0, 0},
      {35, 288, 384, 3, 3, 2, 0, 0},  {35, 96, 96, 3, 3, 2, 0, 0},    {17, 768, 192, 1, 1, 1, 0, 0},
      {17, 768, 128, 1, 1, 1, 0, 0},  {17, 128, 128, 1, 7, 1, 0, 3},  {17, 128, 192, 7, 1, 1, 3, 0},
      {17, 128, 128, 7, 1, 1, 3, 0},  {17, 128, 192, 1, 7, 1, 0, 3},  {17, 768, 160, 1, 1, 1, 0, 0},
      {17, 160, 160, 1, 7, 1, 0, 3},  {17, 160, 192, 7, 1, 1, 3, 0},  {17, 160, 160, 7, 1, 1, 3, 0},
      {17, 160, 192, 1, 7, 1, 0, 3},  {17, 192, 192, 1, 7, 1, 0, 3},  {17, 192, 192, 7, 1, 1, 3, 0},
      {17, 192, 320, 3, 3, 2, 0, 0},  {17, 192, 192, 3, 3, 2, 0, 0},  {8, 1280, 320, 1, 1, 1, 0, 0},
      {8, 1280, 384, 1, 1, 1, 0, 0},  {8, 384, 384, 1, 3, 1, 0, 1},   {8, 384, 384, 3, 1, 1, 1, 0},
      {8, 1280, 448, 1, 1, 1, 0, 0},  {8, 448, 384, 3, 3, 1, 1, 1},   {8, 1280, 192, 1, 1, 1, 0, 0},
      {8, 2048, 320, 1, 1, 1, 0, 0},  {8, 2048, 384, 1, 1, 1, 0, 0},  {8, 2048, 448, 1, 1, 1, 0, 0},
      {8, 2048, 192, 1, 1, 1, 0, 0},
  };
  std::vector<OpCase> cs;
  int i = 0;
  for (const ConvShape& s : kConvs) {
    char name[16];
    std::snprintf(name, sizeof name, "conv%02d", i++);
    cs.push_back(conv_case(name, Shape{n, s.h, s.h, s.cin}, Shape{s.cout, s.kh, s.kw, s.cin},
                           cp(s.stride, s.ph, s.ph, s.pw, s.pw), false));
  }
  // The activations BN+ReLU and the pools see, from the stem to the last block.
  const std::pair<int, int> acts[] = {{147, 64}, {71, 192}, {35, 288}, {17, 768}, {8, 2048}};
  for (auto [hw, c] : acts) {
    const std::string at = "_" + std::to_string(hw) + "x" + std::to_string(c);
    const Shape xs{n, hw, hw, c};
    cs.push_back(batch_norm_case("bn_relu" + at, xs, true, true, true));
    cs.push_back(pool_case("maxpool3x3s2" + at, xs, Pool2dParams::make(3, 2, 0), true));
    cs.push_back(pool_case("avgpool3x3s1" + at, xs, Pool2dParams::make(3, 1, 1), false));
  }
  cs.push_back(global_avg_pool_case("global_avg_pool_8x2048", Shape{n, 8, 8, 2048}));
  // Mixed_6b's output: four 192-channel branches at 17x17.
  cs.push_back(concat_case("concat_mixed_6b", std::vector<Shape>(4, Shape{n, 17, 17, 192})));
  return cs;
}

}  // namespace livernet::testing
