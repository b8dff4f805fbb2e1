// CPU convolutions through oneDNN. Convolution primitives are created once per shape and
// cached; activations stay NHWC (no reorder); weights are given to oneDNN in OHWI and reordered into
// the layout the primitive prefers. bf16/f16 tensors are computed in f32 (the CPU path runs f32).
#include <oneapi/dnnl/dnnl.hpp>

#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>

#include "kernels/backend.h"
#include "kernels/tensor_ops.h"

namespace livernet::kernels::cpu {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// One stream per thread: oneDNN streams are not thread-safe.
dnnl::stream& cpu_stream() {
  thread_local dnnl::stream s(cpu_engine());
  return s;
}

struct ConvGeometry {
  memory::dims src, weights, dst, bias, strides, dilates, pad_l, pad_r;
  bool grouped;
  std::string key;
};

// x [N,H,W,C], w [O,kh,kw,C/g], y [N,Ho,Wo,O]; oneDNN wants logical NCHW / OIHW (or GOIHW) dims.
ConvGeometry geometry(const Shape& x, const Shape& w, const Shape& y, const Conv2dParams& p) {
  ConvGeometry g;
  const int groups = p.groups;
  g.src = {x[0], x[3], x[1], x[2]};
  g.dst = {y[0], y[3], y[1], y[2]};
  g.grouped = groups > 1;
  if (g.grouped) {
    g.weights = {groups, w[0] / groups, w[3], w[1], w[2]};
  } else {
    g.weights = {w[0], w[3], w[1], w[2]};
  }
  g.bias = {w[0]};
  g.strides = {p.stride_h, p.stride_w};
  g.dilates = {p.dilation_h - 1, p.dilation_w - 1};
  g.pad_l = {p.pad_top, p.pad_left};
  g.pad_r = {p.pad_bottom, p.pad_right};
  std::ostringstream os;
  os << x.str() << w.str() << p.str();
  g.key = os.str();
  return g;
}

memory::desc md(const memory::dims& d, tag t) { return memory::desc(d, dt::f32, t); }
tag weights_tag(const ConvGeometry& g) { return g.grouped ? tag::gohwi : tag::ohwi; }

struct ForwardEntry {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward prim;
};
struct BackwardDataEntry {
  dnnl::convolution_backward_data::primitive_desc pd;
  dnnl::convolution_backward_data prim;
};
struct BackwardWeightsEntry {
  dnnl::convolution_backward_weights::primitive_desc pd;
  dnnl::convolution_backward_weights prim;
};

std::mutex cache_mu;
std::map<std::string, ForwardEntry> forward_cache;
std::map<std::string, BackwardDataEntry> backward_data_cache;
std::map<std::string, BackwardWeightsEntry> backward_weights_cache;

dnnl::convolution_forward::primitive_desc forward_pd(const ConvGeometry& g, bool with_bias) {
  const auto src = md(g.src, tag::nhwc), dst = md(g.dst, tag::nhwc), wei = md(g.weights, tag::any);
  if (with_bias) {
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src, wei,
                                      md(g.bias, tag::x), dst, g.strides, g.dilates, g.pad_l, g.pad_r);
    return dnnl::convolution_forward::primitive_desc(d, cpu_engine());
  }
  dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src, wei,
                                    dst, g.strides, g.dilates, g.pad_l, g.pad_r);
  return dnnl::convolution_forward::primitive_desc(d, cpu_engine());
}

// User-layout weights as a memory in the layout `want`, reordering when they differ.
memory weights_for(const memory::desc& want, const ConvGeometry& g, float* data) {
  memory user(md(g.weights, weights_tag(g)), cpu_engine(), data);
  if (want == user.get_desc()) return user;
  memory out(want, cpu_engine());
  dnnl::reorder(user, out).execute(cpu_stream(), user, out);
  return out;
}

// Which backward implementation. oneDNN's first choice on AVX2 machines (oneDNN 2.6, NHWC, f32) is its
// direct JIT kernel ("jit:avx2", "jit_1x1:avx2"); its GEMM-based one ("gemm:jit") is faster on most of
// InceptionV3's backward convolutions: alone, 80->192 3x3 at 73x73 (batch 8) backward data 145 -> 77 ms,
// weights 153 -> 112 ms, 32->64 3x3 at 147x147 64 -> 51 / 78 -> 61 ms, 288->384 3x3/2 57 -> 34 / 62 -> 37 ms,
// a few small ones 1-4 ms slower; in the whole training step (paper model, 299x299, batch 8, 2 threads of an
// AMD EPYC, 3 interleaved runs each, medians) 2.31 -> 2.69 images/s. So on AVX2 the backward passes take
// GEMM wherever oneDNN offers it; elsewhere (AVX-512, other kernels) oneDNN's first choice stays. A fixed
// rule rather than timing the candidates, so that a run and its resumption compute with the same kernels.
// LIVERNET_ONEDNN_BACKWARD=onednn keeps oneDNN's first choice everywhere, =gemm takes GEMM everywhere.
const std::string& backward_choice() {
  static const std::string v = [] {
    const char* env = std::getenv("LIVERNET_ONEDNN_BACKWARD");
    const std::string s = env ? env : "";
    return s == "gemm" || s == "onednn" ? s : std::string("auto");
  }();
  return v;
}

template <typename PD, typename Make>
PD pick_backward(Make make) {
  PD pd = make();
  const std::string& choice = backward_choice();
  if (choice == "onednn") return pd;
  if (choice == "auto" && std::string(pd.impl_info_str()).find(":avx2") == std::string::npos) return pd;
  do {
    if (std::string(pd.impl_info_str()).find("gemm") != std::string::npos) return pd;
  } while (pd.next_impl());
  return make();  // no GEMM implementation: oneDNN's first choice
}

template <typename Fn>
auto with_dnnl_errors(const char* op, Fn&& fn) {
  try {
    return fn();
  } catch (const dnnl::error& e) {
    LN_FAIL(op, ": oneDNN error: ", e.what());
  }
}

}  // namespace

void conv2d_forward(const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in, const Conv2dParams& p, Tensor& y) {
  with_dnnl_errors("conv2d", [&] {
    const Tensor x = to_dtype(x_in, DType::f32), w = to_dtype(w_in, DType::f32);
    const bool with_bias = bias_in.defined();
    const Tensor bias = with_bias ? to_dtype(bias_in, DType::f32) : Tensor();
    Tensor out = y.dtype() == DType::f32 ? y : Tensor::empty(y.shape(), DType::f32, y.device());
    const ConvGeometry g = geometry(x.shape(), w.shape(), out.shape(), p);
    const std::string key = g.key + (with_bias ? "+b" : "");
    ForwardEntry* e;
    {
      std::lock_guard<std::mutex> lock(cache_mu);
      auto it = forward_cache.find(key);
      if (it == forward_cache.end()) {
        auto pd = forward_pd(g, with_bias);
        it = forward_cache.emplace(key, ForwardEntry{pd, dnnl::convolution_forward(pd)}).first;
      }
      e = &it->second;
    }
    memory src(md(g.src, tag::nhwc), cpu_engine(), x.data_ptr());
    memory dst(md(g.dst, tag::nhwc), cpu_engine(), out.data_ptr());
    memory wei = weights_for(e->pd.weights_desc(), g, w.data<float>());
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}};
    if (with_bias) args.emplace(DNNL_ARG_BIAS, memory(md(g.bias, tag::x), cpu_engine(), bias.data_ptr()));
    e->prim.execute(cpu_stream(), args);
    cpu_stream().wait();
    if (!out.is_same(y)) copy_(y, out);
    return 0;
  });
}

void conv2d_backward_data(const Tensor& dy_in, const Tensor& w_in, const Conv2dParams& p, Tensor& dx) {
  with_dnnl_errors("conv2d backward (data)", [&] {
    const Tensor dy = to_dtype(dy_in, DType::f32), w = to_dtype(w_in, DType::f32);
    Tensor out = dx.dtype() == DType::f32 ? dx : Tensor::empty(dx.shape(), DType::f32, dx.device());
    const ConvGeometry g = geometry(out.shape(), w.shape(), dy.shape(), p);
    BackwardDataEntry* e;
    {
      std::lock_guard<std::mutex> lock(cache_mu);
      auto it = backward_data_cache.find(g.key);
      if (it == backward_data_cache.end()) {
        auto hint = forward_pd(g, false);
        dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, md(g.src, tag::nhwc),
                                                md(g.weights, tag::any), md(g.dst, tag::nhwc), g.strides, g.dilates,
                                                g.pad_l, g.pad_r);
        auto pd = pick_backward<dnnl::convolution_backward_data::primitive_desc>(
            [&] { return dnnl::convolution_backward_data::primitive_desc(d, cpu_engine(), hint); });
        it = backward_data_cache.emplace(g.key, BackwardDataEntry{pd, dnnl::convolution_backward_data(pd)}).first;
      }
      e = &it->second;
    }
    memory diff_dst(md(g.dst, tag::nhwc), cpu_engine(), dy.data_ptr());
    memory diff_src(md(g.src, tag::nhwc), cpu_engine(), out.data_ptr());
    memory wei = weights_for(e->pd.weights_desc(), g, w.data<float>());
    e->prim.execute(cpu_stream(), {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DIFF_SRC, diff_src}});
    cpu_stream().wait();
    if (!out.is_same(dx)) copy_(dx, out);
    return 0;
  });
}

void conv2d_backward_weights(const Tensor& dy_in, const Tensor& x_in, const Conv2dParams& p, Tensor& dw) {
  with_dnnl_errors("conv2d backward (weights)", [&] {
    const Tensor dy = to_dtype(dy_in, DType::f32), x = to_dtype(x_in, DType::f32);
    Tensor out = dw.dtype() == DType::f32 ? dw : Tensor::empty(dw.shape(), DType::f32, dw.device());
    const ConvGeometry g = geometry(x.shape(), out.shape(), dy.shape(), p);
    BackwardWeightsEntry* e;
    {
      std::lock_guard<std::mutex> lock(cache_mu);
      auto it = backward_weights_cache.find(g.key);
      if (it == backward_weights_cache.end()) {
        auto hint = forward_pd(g, false);
        dnnl::convolution_backward_weights::desc d(dnnl::algorithm::convolution_direct, md(g.src, tag::nhwc),
                                                   md(g.weights, tag::any), md(g.dst, tag::nhwc), g.strides,
                                                   g.dilates, g.pad_l, g.pad_r);
        auto pd = pick_backward<dnnl::convolution_backward_weights::primitive_desc>(
            [&] { return dnnl::convolution_backward_weights::primitive_desc(d, cpu_engine(), hint); });
        it = backward_weights_cache.emplace(g.key, BackwardWeightsEntry{pd, dnnl::convolution_backward_weights(pd)}).first;
      }
      e = &it->second;
    }
    memory src(md(g.src, tag::nhwc), cpu_engine(), x.data_ptr());
    memory diff_dst(md(g.dst, tag::nhwc), cpu_engine(), dy.data_ptr());
    memory user_dw(md(g.weights, weights_tag(g)), cpu_engine(), out.data_ptr());
    const bool direct = e->pd.diff_weights_desc() == user_dw.get_desc();
    memory diff_w = direct ? user_dw : memory(e->pd.diff_weights_desc(), cpu_engine());
    e->prim.execute(cpu_stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_WEIGHTS, diff_w}});
    if (!direct) dnnl::reorder(diff_w, user_dw).execute(cpu_stream(), diff_w, user_dw);
    cpu_stream().wait();
    if (!out.is_same(dw)) copy_(dw, out);
    return 0;
  });
}

}  // namespace livernet::kernels::cpu
