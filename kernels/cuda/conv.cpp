// GPU convolutions through cuDNN 9 (the legacy convolution API, which cuDNN 9 still ships; the graph
// API can replace this file without touching its callers). NHWC tensors, KRSC (= OHWI) filters.
//  - Each problem (direction, shapes, dtype, parameters, device, math flags) gets a plan once: its four
//    descriptors and the algorithm cudnnFind*Ex found fastest, kept for the process. A call then costs a
//    hash lookup of a small fixed-size key and the cuDNN call itself (no descriptors made and destroyed,
//    no text keys: that was ~120 us of host time per call, on ~280 calls per training step).
//  - One workspace per device, shared by every convolution, grown on demand up to a cap
//    (LIVERNET_CUDNN_WORKSPACE_MB, default 1024); when memory is short, the search runs with what could
//    be allocated and an algorithm that needs no workspace is the last resort.
//  - LIVERNET_CUDNN_SEARCH=heuristic ranks algorithms with cuDNN's heuristics (cudnnGet*_v7) instead of
//    timing them all: a much faster start (under compute-sanitizer, say), possibly slower convolutions.
//  - f32 uses FMA math unless set_allow_tf32(true); bf16/f16 use tensor cores, computing in f32.
//  - set_deterministic(true) admits only deterministic algorithms.
//  - Asymmetric padding (never needed by InceptionV3) pads the input explicitly first.
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/cuda/cuda_context.h"
#include "kernels/cuda/handles.h"
#include "kernels/backend.h"
#include "kernels/tensor_ops.h"

namespace livernet::kernels::cuda {

namespace {

using livernet::cuda::cudnn_handle;
using livernet::cuda::current_stream;
using livernet::cuda::DeviceGuard;

cudnnDataType_t cudnn_dtype(DType t) {
  switch (t) {
    case DType::f32: return CUDNN_DATA_FLOAT;
    case DType::bf16: return CUDNN_DATA_BFLOAT16;
    case DType::f16: return CUDNN_DATA_HALF;
    default: LN_FAIL("conv2d on CUDA: unsupported dtype ", dtype_name(t));
  }
}

// RAII descriptors for one convolution problem (x, w, y given as NHWC / KRSC shapes).
struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

  Descriptors(const Shape& xs, const Shape& ws, const Shape& ys, DType dt, const Conv2dParams& p) {
    const cudnnDataType_t d = cudnn_dtype(dt);
    LN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    LN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    LN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    LN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    auto i32 = [](std::int64_t v) {
      LN_CHECK(v <= 0x7fffffff, "conv2d on CUDA: extent ", v, " too large for cuDNN");
      return static_cast<int>(v);
    };
    LN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NHWC, d, i32(xs[0]), i32(xs[3]), i32(xs[1]), i32(xs[2])));
    LN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NHWC, d, i32(ys[0]), i32(ys[3]), i32(ys[1]), i32(ys[2])));
    LN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, d, CUDNN_TENSOR_NHWC, i32(ws[0]), i32(ws[3]), i32(ws[1]), i32(ws[2])));
    LN_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, p.pad_top, p.pad_left, p.stride_h, p.stride_w, p.dilation_h,
                                                   p.dilation_w, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    LN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, p.groups));
    set_math(dt == DType::f32 ? (allow_tf32() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH) : CUDNN_TENSOR_OP_MATH);
  }
  void set_math(cudnnMathType_t m) { LN_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, m)); }
  ~Descriptors() {
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyTensorDescriptor(x);
  }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;
};

struct Choice {
  int algo = 0;
  std::size_t workspace = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

enum class Direction : int { forward, backward_data, backward_filter };

// Everything that decides a convolution's descriptors and algorithm, as plain integers (hashed bytewise;
// value-initialised so that padding bytes are zero).
struct PlanKey {
  std::int64_t x[4], w[4], y[4];
  int direction, dtype, device;
  int stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups;
  int tf32, deterministic;
  bool operator==(const PlanKey& o) const { return std::memcmp(this, &o, sizeof(PlanKey)) == 0; }
};
static_assert(std::is_trivially_copyable_v<PlanKey>);

struct PlanKeyHash {
  std::size_t operator()(const PlanKey& k) const {
    // FNV-1a over the key's bytes.
    const auto* p = reinterpret_cast<const unsigned char*>(&k);
    std::uint64_t h = 1469598103934665603ull;
    for (std::size_t i = 0; i < sizeof(PlanKey); ++i) h = (h ^ p[i]) * 1099511628211ull;
    return static_cast<std::size_t>(h);
  }
};

PlanKey make_key(Direction dir, const Shape& xs, const Shape& ws, const Shape& ys, DType dt, int device,
                 const Conv2dParams& p) {
  PlanKey k{};
  for (int i = 0; i < 4; ++i) {
    k.x[i] = xs[i];
    k.w[i] = ws[i];
    k.y[i] = ys[i];
  }
  k.direction = static_cast<int>(dir);
  k.dtype = static_cast<int>(dt);
  k.device = device;
  k.stride_h = p.stride_h;
  k.stride_w = p.stride_w;
  k.pad_h = p.pad_top;  // symmetric by now (asymmetric padding is applied explicitly first)
  k.pad_w = p.pad_left;
  k.dilation_h = p.dilation_h;
  k.dilation_w = p.dilation_w;
  k.groups = p.groups;
  k.tf32 = allow_tf32() ? 1 : 0;
  k.deterministic = deterministic() ? 1 : 0;
  return k;
}

// A problem's descriptors and, once searched, its algorithm. Read-only after `chosen` is set, so threads
// may share it.
struct Plan {
  Plan(const Shape& xs, const Shape& ws, const Shape& ys, DType dt, const Conv2dParams& p) : d(xs, ws, ys, dt, p) {}
  Descriptors d;
  Choice choice;
  bool chosen = false;
};

std::mutex g_mu;
std::unordered_map<PlanKey, std::unique_ptr<Plan>, PlanKeyHash> g_plans;

// The plan for a problem, made on first use (descriptors only; the algorithm is chosen by run_conv).
Plan& plan_for(Direction dir, const Shape& xs, const Shape& ws, const Shape& ys, DType dt, int device,
               const Conv2dParams& p) {
  const PlanKey key = make_key(dir, xs, ws, ys, dt, device, p);
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_plans.find(key);
  if (it == g_plans.end()) it = g_plans.emplace(key, std::make_unique<Plan>(xs, ws, ys, dt, p)).first;
  return *it->second;
}

// LIVERNET_CUDNN_SEARCH: "find" (default: time the algorithms) or "heuristic".
bool heuristic_search() {
  static const bool heuristic = [] {
    const char* env = std::getenv("LIVERNET_CUDNN_SEARCH");
    return env && std::string(env) == "heuristic";
  }();
  return heuristic;
}

std::size_t workspace_cap() {
  static const std::size_t cap = [] {
    const char* env = std::getenv("LIVERNET_CUDNN_WORKSPACE_MB");
    const long mb = env ? std::atol(env) : 1024;
    return static_cast<std::size_t>(mb > 0 ? mb : 0) << 20;
  }();
  return cap;
}

// The shared workspace of a device: grown (never shrunk) on request; returns what could be had.
struct Workspace {
  Tensor buffer;
  void* get(int device, std::size_t want, std::size_t* got) {
    if (!buffer.defined() || buffer.nbytes() < want) {
      buffer = Tensor();
      std::size_t size = want;
      while (size > 0) {
        try {
          buffer = Tensor::empty(Shape{static_cast<std::int64_t>(size)}, DType::u8, Device::cuda(device));
          break;
        } catch (const OutOfMemoryError&) {
          size /= 2;  // memory is short: settle for less
        }
      }
    }
    *got = buffer.defined() ? buffer.nbytes() : 0;
    return buffer.defined() ? buffer.data_ptr() : nullptr;
  }
};

Workspace& workspace(int device) {
  static std::map<int, Workspace>* ws = new std::map<int, Workspace>();
  return (*ws)[device];
}

// Picks the fastest admissible result of a cudnnFind*Ex call.
template <typename Perf>
bool pick(const Perf* results, int n, bool f32_strict, std::size_t workspace_limit, Choice& out) {
  for (int i = 0; i < n; ++i) {
    const Perf& r = results[i];
    if (r.status != CUDNN_STATUS_SUCCESS || r.memory > workspace_limit) continue;
    if (deterministic() && r.determinism != CUDNN_DETERMINISTIC) continue;
    if (f32_strict && r.mathType != CUDNN_FMA_MATH && r.mathType != CUDNN_DEFAULT_MATH) continue;
    out.algo = static_cast<int>(r.algo);
    out.workspace = r.memory;
    out.math = r.mathType;
    return true;
  }
  return false;
}

// Shared driver: searches the plan's algorithm on first use, makes sure the workspace is there, runs.
// `find` fills perf results given (workspace, size); `fallback` gives (algo, workspace need) that needs
// the least memory; `run` executes (choice, workspace, size).
template <typename Find, typename Fallback, typename Run>
void run_conv(const char* what, Plan& plan, int device, Find&& find, Fallback&& fallback, Run&& run) {
  std::size_t have = 0;
  void* ws = nullptr;
  Choice choice;
  bool chosen;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    chosen = plan.chosen;
    choice = plan.choice;
  }
  if (!chosen) {
    ws = workspace(device).get(device, workspace_cap(), &have);
    if (!find(ws, have, choice)) {
      choice = fallback();
      LN_CHECK(choice.workspace <= have, what, ": no cuDNN algorithm fits in the available memory");
    }
    std::lock_guard<std::mutex> lock(g_mu);
    if (!plan.chosen) {  // another thread may have searched meanwhile: keep the first choice
      plan.d.set_math(choice.math);
      plan.choice = choice;
      plan.chosen = true;
    }
    choice = plan.choice;
  } else {
    ws = workspace(device).get(device, choice.workspace, &have);
    if (have < choice.workspace) {
      // Memory is short now: the least demanding algorithm, with the math mode set for this call only
      // (the plan keeps its choice for when memory is back).
      const Choice fb = fallback();
      LN_CHECK(fb.workspace <= have, what, ": not enough GPU memory for a cuDNN workspace");
      Descriptors& d = plan.d;
      d.set_math(fb.math);
      run(fb, ws, fb.workspace);
      d.set_math(choice.math);
      count_launches();
      return;
    }
  }
  run(choice, ws, choice.workspace);
  count_launches();
}

const float kOne = 1.f, kZero = 0.f;

}  // namespace

void conv2d_forward(const Tensor& x_in, const Tensor& w, const Tensor& bias, const Conv2dParams& p_in, Tensor& y) {
  DeviceGuard guard(x_in.device().index);
  const int dev = x_in.device().index;
  Conv2dParams p = p_in;
  Tensor x = x_in;
  if (!p.symmetric()) {
    x = pad2d(x_in, p.pad_top, p.pad_bottom, p.pad_left, p.pad_right);
    p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 0;
  }
  Plan& plan = plan_for(Direction::forward, x.shape(), w.shape(), y.shape(), x.dtype(), dev, p);
  const Descriptors& d = plan.d;
  cudnnHandle_t h = cudnn_handle(dev);
  const bool strict = x.dtype() == DType::f32 && !allow_tf32();
  run_conv(
      "conv2d", plan, dev,
      [&](void* ws, std::size_t size, Choice& c) {
        cudnnConvolutionFwdAlgoPerf_t r[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        int n = 0;
        if (heuristic_search()) {
          LN_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                                &n, r));
        } else {
          LN_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, d.x, x.data_ptr(), d.w, w.data_ptr(), d.conv, d.y,
                                                                y.data_ptr(), CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, r, ws,
                                                                size));
        }
        return pick(r, n, strict, size, c);
      },
      [&] {
        Choice c;
        c.algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
        c.math = strict ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
        LN_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y,
                                                               CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, &c.workspace));
        return c;
      },
      [&](const Choice& c, void* ws, std::size_t size) {
        LN_CUDNN_CHECK(cudnnConvolutionForward(h, &kOne, d.x, x.data_ptr(), d.w, w.data_ptr(), d.conv,
                                               static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), ws, size, &kZero, d.y,
                                               y.data_ptr()));
      });
  if (bias.defined()) bias_add(y, bias);
}

void conv2d_backward_data(const Tensor& dy, const Tensor& w, const Conv2dParams& p_in, Tensor& dx) {
  DeviceGuard guard(dy.device().index);
  const int dev = dy.device().index;
  Conv2dParams p = p_in;
  Tensor out = dx;
  if (!p.symmetric()) {
    out = Tensor::empty(Shape{dx.size(0), dx.size(1) + p.pad_top + p.pad_bottom, dx.size(2) + p.pad_left + p.pad_right,
                              dx.size(3)},
                        dx.dtype(), dx.device());
    p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 0;
  }
  Plan& plan = plan_for(Direction::backward_data, out.shape(), w.shape(), dy.shape(), dy.dtype(), dev, p);
  const Descriptors& d = plan.d;
  cudnnHandle_t h = cudnn_handle(dev);
  const bool strict = dy.dtype() == DType::f32 && !allow_tf32();
  run_conv(
      "conv2d backward (data)", plan, dev,
      [&](void* ws, std::size_t size, Choice& c) {
        cudnnConvolutionBwdDataAlgoPerf_t r[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        int n = 0;
        if (heuristic_search()) {
          LN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x,
                                                                     CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, r));
        } else {
          LN_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w, w.data_ptr(), d.y, dy.data_ptr(), d.conv,
                                                                     d.x, out.data_ptr(),
                                                                     CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, r, ws, size));
        }
        return pick(r, n, strict, size, c);
      },
      [&] {
        Choice c;
        c.algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;  // deterministic, small workspace
        c.math = strict ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
        LN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x,
                                                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, &c.workspace));
        return c;
      },
      [&](const Choice& c, void* ws, std::size_t size) {
        LN_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &kOne, d.w, w.data_ptr(), d.y, dy.data_ptr(), d.conv,
                                                    static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), ws, size, &kZero,
                                                    d.x, out.data_ptr()));
      });
  if (!out.is_same(dx)) copy_(dx, crop2d(out, p_in.pad_top, p_in.pad_bottom, p_in.pad_left, p_in.pad_right));
}

void conv2d_backward_weights(const Tensor& dy, const Tensor& x_in, const Conv2dParams& p_in, Tensor& dw) {
  DeviceGuard guard(dy.device().index);
  const int dev = dy.device().index;
  Conv2dParams p = p_in;
  Tensor x = x_in;
  if (!p.symmetric()) {
    x = pad2d(x_in, p.pad_top, p.pad_bottom, p.pad_left, p.pad_right);
    p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 0;
  }
  Plan& plan = plan_for(Direction::backward_filter, x.shape(), dw.shape(), dy.shape(), dy.dtype(), dev, p);
  const Descriptors& d = plan.d;
  cudnnHandle_t h = cudnn_handle(dev);
  const bool strict = dy.dtype() == DType::f32 && !allow_tf32();
  run_conv(
      "conv2d backward (weights)", plan, dev,
      [&](void* ws, std::size_t size, Choice& c) {
        cudnnConvolutionBwdFilterAlgoPerf_t r[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        int n = 0;
        if (heuristic_search()) {
          LN_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w,
                                                                       CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, r));
        } else {
          LN_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x, x.data_ptr(), d.y, dy.data_ptr(), d.conv,
                                                                       d.w, dw.data_ptr(),
                                                                       CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, r, ws,
                                                                       size));
        }
        return pick(r, n, strict, size, c);
      },
      [&] {
        Choice c;
        c.algo = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;  // deterministic
        c.math = strict ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
        LN_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w,
                                                                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, &c.workspace));
        return c;
      },
      [&](const Choice& c, void* ws, std::size_t size) {
        LN_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &kOne, d.x, x.data_ptr(), d.y, dy.data_ptr(), d.conv,
                                                      static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo), ws, size,
                                                      &kZero, d.w, dw.data_ptr()));
      });
}

}  // namespace livernet::kernels::cuda
