// Front ends of the NN ops: argument checks with messages that name the op and both sides, output
// allocation, then LN_DISPATCH to the CPU or CUDA backend.
#include "kernels/nn.h"

#include <atomic>
#include <numeric>

#include "kernels/backend.h"

namespace livernet::kernels {

namespace {

std::atomic<bool> g_allow_tf32{false};
std::atomic<bool> g_deterministic{false};
std::atomic<std::uint64_t> g_flops{0};

void count_conv_flops(const Shape& y, const Shape& w) {
  g_flops += 2ull * static_cast<std::uint64_t>(y.numel()) * static_cast<std::uint64_t>(w[1] * w[2] * w[3]);
}

void check_float(const char* op, const Tensor& t, const char* which) {
  LN_CHECK(t.defined(), op, ": ", which, " is undefined");
  LN_CHECK(is_floating(t.dtype()), op, ": ", which, " must be f32, bf16 or f16, got ", dtype_name(t.dtype()));
}

void check_rank(const char* op, const Tensor& t, int rank, const char* which, const char* layout) {
  LN_CHECK(t.dim() == rank, op, ": ", which, " must have ", rank, " dimensions (", layout, "), got shape ",
           t.shape().str());
}

void check_vector(const char* op, const Tensor& t, std::int64_t n, const char* which) {
  if (!t.defined()) return;
  LN_CHECK(t.dim() == 1 && t.size(0) == n, op, ": ", which, " must have shape [", n, "], got ", t.shape().str());
  LN_CHECK(t.dtype() == DType::f32, op, ": ", which, " must be f32, got ", dtype_name(t.dtype()));
}

void check_scalar_f32(const char* op, const Tensor& t, const char* which) {
  LN_CHECK(t.defined() && t.numel() == 1 && t.dtype() == DType::f32, op, ": ", which,
           " must be a one-element f32 tensor");
}

}  // namespace

std::uint64_t flop_count() { return g_flops; }
void reset_flop_count() { g_flops = 0; }
void set_allow_tf32(bool allow) { g_allow_tf32 = allow; }
bool allow_tf32() { return g_allow_tf32; }
void set_deterministic(bool on) { g_deterministic = on; }
bool deterministic() { return g_deterministic; }

// ---- convolution -----------------------------------------------------------------------------------------

std::string Conv2dParams::str() const {
  return str_cat("stride ", stride_h, "x", stride_w, ", padding (t", pad_top, " b", pad_bottom, " l", pad_left, " r",
                 pad_right, "), dilation ", dilation_h, "x", dilation_w, ", groups ", groups);
}

Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dParams& p) {
  LN_CHECK(x.size() == 4, "conv2d: input must be [N, H, W, C], got ", x.str());
  LN_CHECK(w.size() == 4, "conv2d: weight must be [Cout, kh, kw, Cin/groups] (OHWI), got ", w.str());
  LN_CHECK(p.groups >= 1 && p.stride_h >= 1 && p.stride_w >= 1 && p.dilation_h >= 1 && p.dilation_w >= 1,
           "conv2d: invalid parameters: ", p.str());
  LN_CHECK(p.pad_top >= 0 && p.pad_bottom >= 0 && p.pad_left >= 0 && p.pad_right >= 0, "conv2d: negative padding: ",
           p.str());
  LN_CHECK(x[3] == w[3] * p.groups, "conv2d: input has ", x[3], " channels but the weight ", w.str(), " with ",
           p.groups, " group(s) expects ", w[3] * p.groups);
  LN_CHECK(w[0] % p.groups == 0, "conv2d: ", w[0], " output channels are not divisible by ", p.groups, " groups");
  const std::int64_t ho = p.out_h(x[1], w[1]), wo = p.out_w(x[2], w[2]);
  LN_CHECK(ho >= 1 && wo >= 1, "conv2d: input ", x.str(), " is too small for kernel ", w[1], "x", w[2], " with ",
           p.str());
  return Shape{x[0], ho, wo, w[0]};
}

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  check_float("conv2d", x, "input");
  check_float("conv2d", w, "weight");
  check_same_device("conv2d", x, w);
  LN_CHECK(x.dtype() == w.dtype(), "conv2d: input is ", dtype_name(x.dtype()), " but weight is ", dtype_name(w.dtype()));
  const Shape ys = conv2d_output_shape(x.shape(), w.shape(), p);
  if (bias.defined()) {
    check_same_device("conv2d (bias)", x, bias);
    LN_CHECK(bias.dim() == 1 && bias.size(0) == w.size(0), "conv2d: bias must have shape [", w.size(0), "], got ",
             bias.shape().str());
  }
  Tensor y = Tensor::empty(ys, x.dtype(), x.device());
  if (y.numel() == 0) return y;
  count_conv_flops(ys, w.shape());
  LN_DISPATCH(x.device(), conv2d_forward, x, w, bias, p, y);
  return y;
}

Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape, const Conv2dParams& p) {
  check_float("conv2d backward", dy, "output gradient");
  const Shape ys = conv2d_output_shape(x_shape, w.shape(), p);
  LN_CHECK(dy.shape() == ys, "conv2d backward: output gradient ", dy.shape().str(), " does not match the output ",
           ys.str());
  check_same_device("conv2d backward", dy, w);
  Tensor dx = Tensor::empty(x_shape, dy.dtype(), dy.device());
  count_conv_flops(ys, w.shape());
  LN_DISPATCH(dy.device(), conv2d_backward_data, dy, w.dtype() == dy.dtype() ? w : w.to(dy.dtype()), p, dx);
  return dx;
}

void conv2d_backward_weights(const Tensor& dy, const Tensor& x, const Conv2dParams& p, Tensor& dw, Tensor* dbias) {
  check_float("conv2d backward", dy, "output gradient");
  check_float("conv2d backward", x, "input");
  const Shape ys = conv2d_output_shape(x.shape(), dw.shape(), p);
  LN_CHECK(dy.shape() == ys, "conv2d backward: output gradient ", dy.shape().str(), " does not match the output ",
           ys.str());
  check_same_device("conv2d backward", dy, x);
  check_same_device("conv2d backward", dy, dw);
  count_conv_flops(ys, dw.shape());
  if (dw.dtype() == dy.dtype()) {
    LN_DISPATCH(dy.device(), conv2d_backward_weights, dy, x.dtype() == dy.dtype() ? x : x.to(dy.dtype()), p, dw);
  } else {
    Tensor tmp = Tensor::empty(dw.shape(), dy.dtype(), dy.device());
    LN_DISPATCH(dy.device(), conv2d_backward_weights, dy, x.dtype() == dy.dtype() ? x : x.to(dy.dtype()), p, tmp);
    dw.copy_(tmp);
  }
  if (dbias) *dbias = sum(dy, {0, 1, 2});
}

// ---- batch norm ----------------------------------------------------------------------------------------------

namespace {
void check_bn(const char* op, const Tensor& x, const Tensor& gamma, const Tensor& beta) {
  check_float(op, x, "input");
  LN_CHECK(x.dim() >= 2, op, ": input must have a channel dimension, got shape ", x.shape().str());
  const std::int64_t c = x.size(-1);
  check_vector(op, gamma, c, "gamma");
  LN_CHECK(beta.defined(), op, ": beta is undefined");
  check_vector(op, beta, c, "beta");
  check_same_device(op, x, beta);
}
}  // namespace

Tensor batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                        Tensor& running_var, float momentum, float eps, bool relu, BatchNormState& state) {
  check_bn("batch_norm", x, gamma, beta);
  const std::int64_t c = x.size(-1);
  LN_CHECK(running_mean.defined() == running_var.defined(), "batch_norm: give both running statistics or neither");
  check_vector("batch_norm", running_mean, c, "running_mean");
  check_vector("batch_norm", running_var, c, "running_var");
  LN_CHECK(x.numel() > 0, "batch_norm: empty input ", x.shape().str());
  LN_CHECK(eps > 0.f && momentum >= 0.f && momentum <= 1.f, "batch_norm: eps must be > 0 and momentum in [0, 1]");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  state.save_mean = Tensor::empty(Shape{c}, DType::f32, x.device());
  state.save_invstd = Tensor::empty(Shape{c}, DType::f32, x.device());
  LN_DISPATCH(x.device(), batch_norm_train, x, gamma, beta, running_mean, running_var, momentum, eps, relu, y,
              state.save_mean, state.save_invstd);
  return y;
}

Tensor batch_norm_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                       const Tensor& running_var, float eps, bool relu, BatchNormState& state) {
  check_bn("batch_norm", x, gamma, beta);
  const std::int64_t c = x.size(-1);
  LN_CHECK(running_mean.defined() && running_var.defined(), "batch_norm: eval mode needs the running statistics");
  check_vector("batch_norm", running_mean, c, "running_mean");
  check_vector("batch_norm", running_var, c, "running_var");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  state.save_mean = Tensor::empty(Shape{c}, DType::f32, x.device());
  state.save_invstd = Tensor::empty(Shape{c}, DType::f32, x.device());
  if (x.numel() == 0) return y;
  LN_DISPATCH(x.device(), batch_norm_eval, x, gamma, beta, running_mean, running_var, eps, relu, y, state.save_mean,
              state.save_invstd);
  return y;
}

Tensor batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& y, const Tensor& gamma,
                           const BatchNormState& state, bool train, bool relu, Tensor* dgamma, Tensor* dbeta) {
  check_float("batch_norm backward", dy, "output gradient");
  check_same_shape("batch_norm backward", dy, x);
  check_same_dtype("batch_norm backward", dy, x);
  if (relu) {
    LN_CHECK(y.defined(), "batch_norm backward: the forward output is needed when relu was fused");
    check_same_shape("batch_norm backward", y, x);
  }
  const std::int64_t c = x.size(-1);
  Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor dg = Tensor::empty(Shape{c}, DType::f32, x.device());
  Tensor db = Tensor::empty(Shape{c}, DType::f32, x.device());
  LN_DISPATCH(x.device(), batch_norm_backward, dy, x, y, gamma, state.save_mean, state.save_invstd, train, relu, dx,
              dg, db);
  if (dgamma) *dgamma = dg;
  if (dbeta) *dbeta = db;
  return dx;
}

// ---- pooling ----------------------------------------------------------------------------------------------

namespace {
Shape pool_output_shape(const char* op, const Shape& x, const Pool2dParams& p) {
  LN_CHECK(x.size() == 4, op, ": input must be [N, H, W, C], got ", x.str());
  LN_CHECK(p.kernel_h >= 1 && p.kernel_w >= 1 && p.stride_h >= 1 && p.stride_w >= 1 && p.pad_h >= 0 && p.pad_w >= 0,
           op, ": invalid kernel/stride/padding");
  LN_CHECK(2 * p.pad_h <= p.kernel_h && 2 * p.pad_w <= p.kernel_w, op, ": padding must be at most half the kernel");
  const std::int64_t ho = p.out_h(x[1]), wo = p.out_w(x[2]);
  LN_CHECK(x[1] + 2 * p.pad_h >= p.kernel_h && x[2] + 2 * p.pad_w >= p.kernel_w && ho >= 1 && wo >= 1, op, ": input ",
           x.str(), " is smaller than the ", p.kernel_h, "x", p.kernel_w, " window");
  return Shape{x[0], ho, wo, x[3]};
}
}  // namespace

Tensor max_pool2d_forward(const Tensor& x, const Pool2dParams& p, Tensor& indices, bool with_indices) {
  check_float("max_pool2d", x, "input");
  const Shape ys = pool_output_shape("max_pool2d", x.shape(), p);
  LN_CHECK(x.size(1) * x.size(2) < (std::int64_t{1} << 31), "max_pool2d: plane too large");
  Tensor y = Tensor::empty(ys, x.dtype(), x.device());
  indices = with_indices ? Tensor::empty(ys, DType::i32, x.device()) : Tensor();
  if (y.numel() == 0) return y;
  LN_DISPATCH(x.device(), max_pool2d_forward, x, p, y, indices);
  return y;
}

Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape, const Pool2dParams& p) {
  check_float("max_pool2d backward", dy, "output gradient");
  const Shape ys = pool_output_shape("max_pool2d backward", x_shape, p);
  LN_CHECK(dy.shape() == ys && indices.shape() == ys, "max_pool2d backward: gradient ", dy.shape().str(),
           " / indices ", indices.shape().str(), " do not match the output ", ys.str());
  check_dtype("max_pool2d backward", indices, DType::i32, "indices");
  Tensor dx = Tensor::empty(x_shape, dy.dtype(), dy.device());
  if (dx.numel() == 0) return dx;
  LN_DISPATCH(dy.device(), max_pool2d_backward, dy, indices, p, dx);
  return dx;
}

Tensor avg_pool2d_forward(const Tensor& x, const Pool2dParams& p) {
  check_float("avg_pool2d", x, "input");
  Tensor y = Tensor::empty(pool_output_shape("avg_pool2d", x.shape(), p), x.dtype(), x.device());
  if (y.numel() == 0) return y;
  LN_DISPATCH(x.device(), avg_pool2d_forward, x, p, y);
  return y;
}

Tensor avg_pool2d_backward(const Tensor& dy, const Shape& x_shape, const Pool2dParams& p) {
  check_float("avg_pool2d backward", dy, "output gradient");
  const Shape ys = pool_output_shape("avg_pool2d backward", x_shape, p);
  LN_CHECK(dy.shape() == ys, "avg_pool2d backward: gradient ", dy.shape().str(), " does not match the output ", ys.str());
  Tensor dx = Tensor::empty(x_shape, dy.dtype(), dy.device());
  if (dx.numel() == 0) return dx;
  LN_DISPATCH(dy.device(), avg_pool2d_backward, dy, p, dx);
  return dx;
}

Tensor global_avg_pool_forward(const Tensor& x) {
  check_float("global_avg_pool", x, "input");
  check_rank("global_avg_pool", x, 4, "input", "N, H, W, C");
  LN_CHECK(x.size(1) * x.size(2) > 0, "global_avg_pool: empty plane in ", x.shape().str());
  Tensor m = mean(x, {1, 2});
  return x.dtype() == DType::f32 ? m : m.to(x.dtype());
}

Tensor global_avg_pool_backward(const Tensor& dy, const Shape& x_shape) {
  check_float("global_avg_pool backward", dy, "output gradient");
  LN_CHECK(x_shape.size() == 4 && dy.shape() == (Shape{x_shape[0], x_shape[3]}), "global_avg_pool backward: gradient ",
           dy.shape().str(), " does not match input ", x_shape.str());
  Tensor dx = Tensor::empty(x_shape, dy.dtype(), dy.device());
  if (dx.numel() == 0) return dx;
  LN_DISPATCH(dy.device(), global_avg_pool_backward, dy, dx);
  return dx;
}

// ---- concat / split / pad ------------------------------------------------------------------------------------

Tensor concat(const std::vector<Tensor>& xs, int axis) {
  LN_CHECK(!xs.empty(), "concat: no inputs");
  const Tensor& first = xs[0];
  LN_CHECK(first.defined(), "concat: input 0 is undefined");
  const int nd = first.dim();
  const int ax = axis < 0 ? axis + nd : axis;
  LN_CHECK(ax >= 0 && ax < nd, "concat: axis ", axis, " out of range for shape ", first.shape().str());
  Shape out = first.shape();
  std::int64_t total = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Tensor& t = xs[i];
    LN_CHECK(t.defined(), "concat: input ", i, " is undefined");
    LN_CHECK(t.dim() == nd, "concat: input ", i, " has shape ", t.shape().str(), ", input 0 has ", first.shape().str());
    for (int d = 0; d < nd; ++d)
      LN_CHECK(d == ax || t.size(d) == first.size(d), "concat along axis ", ax, ": input ", i, " has shape ",
               t.shape().str(), ", input 0 has ", first.shape().str());
    check_same_dtype("concat", first, t);
    check_same_device("concat", first, t);
    total += t.size(ax);
  }
  out[ax] = total;
  Tensor y = Tensor::empty(out, first.dtype(), first.device());
  if (y.numel() == 0) return y;
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; ++d) outer *= out[d];
  for (int d = ax + 1; d < nd; ++d) inner *= out[d];
  std::int64_t offset = 0;
  for (const Tensor& t : xs) {
    const std::int64_t cols = t.size(ax) * inner;
    if (cols > 0) LN_DISPATCH(y.device(), copy_blocks, t, 0, cols, 0, y, offset, total * inner, 0, 1, outer, cols);
    offset += cols;
  }
  return y;
}

std::vector<Tensor> split(const Tensor& y, int axis, const std::vector<std::int64_t>& sizes) {
  LN_CHECK(y.defined(), "split: input is undefined");
  const int nd = y.dim();
  const int ax = axis < 0 ? axis + nd : axis;
  LN_CHECK(ax >= 0 && ax < nd, "split: axis ", axis, " out of range for shape ", y.shape().str());
  const std::int64_t total = std::accumulate(sizes.begin(), sizes.end(), std::int64_t{0});
  LN_CHECK(total == y.size(ax), "split: sizes add up to ", total, " but axis ", ax, " of ", y.shape().str(), " has ",
           y.size(ax));
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; ++d) outer *= y.size(d);
  for (int d = ax + 1; d < nd; ++d) inner *= y.size(d);
  std::vector<Tensor> out;
  std::int64_t offset = 0;
  for (std::int64_t s : sizes) {
    Shape ps = y.shape();
    ps[ax] = s;
    Tensor piece = Tensor::empty(ps, y.dtype(), y.device());
    const std::int64_t cols = s * inner;
    if (piece.numel() > 0)
      LN_DISPATCH(y.device(), copy_blocks, y, offset, total * inner, 0, piece, 0, cols, 0, 1, outer, cols);
    offset += cols;
    out.push_back(piece);
  }
  return out;
}

Tensor pad2d(const Tensor& x, int top, int bottom, int left, int right) {
  LN_CHECK(x.defined() && x.dim() == 4, "pad2d: input must be [N, H, W, C]");
  LN_CHECK(top >= 0 && bottom >= 0 && left >= 0 && right >= 0, "pad2d: negative padding");
  const std::int64_t N = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const std::int64_t Hp = H + top + bottom, Wp = W + left + right;
  Tensor y = Tensor::zeros(Shape{N, Hp, Wp, C}, x.dtype(), x.device());
  if (x.numel() == 0) return y;
  LN_DISPATCH(x.device(), copy_blocks, x, 0, W * C, H * W * C, y, (top * Wp + left) * C, Wp * C, Hp * Wp * C, N, H,
              W * C);
  return y;
}

Tensor crop2d(const Tensor& x, int top, int bottom, int left, int right) {
  LN_CHECK(x.defined() && x.dim() == 4, "crop2d: input must be [N, H, W, C]");
  const std::int64_t N = x.size(0), Hp = x.size(1), Wp = x.size(2), C = x.size(3);
  const std::int64_t H = Hp - top - bottom, W = Wp - left - right;
  LN_CHECK(top >= 0 && bottom >= 0 && left >= 0 && right >= 0 && H >= 0 && W >= 0, "crop2d: bad crop of ",
           x.shape().str());
  Tensor y = Tensor::empty(Shape{N, H, W, C}, x.dtype(), x.device());
  if (y.numel() == 0) return y;
  LN_DISPATCH(x.device(), copy_blocks, x, (top * Wp + left) * C, Wp * C, Hp * Wp * C, y, 0, W * C, H * W * C, N, H,
              W * C);
  return y;
}

// ---- GEMM, bias, linear --------------------------------------------------------------------------------------

void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, float alpha, float beta, Tensor& c) {
  check_float("gemm", a, "A");
  check_float("gemm", b, "B");
  check_float("gemm", c, "C");
  LN_CHECK(a.dim() == 2 && b.dim() == 2 && c.dim() == 2, "gemm: operands must be 2-D, got ", a.shape().str(), " ",
           b.shape().str(), " ", c.shape().str());
  check_same_device("gemm", a, b);
  check_same_device("gemm", a, c);
  check_same_dtype("gemm", a, b);
  const std::int64_t m = trans_a ? a.size(1) : a.size(0), k = trans_a ? a.size(0) : a.size(1);
  const std::int64_t kb = trans_b ? b.size(1) : b.size(0), n = trans_b ? b.size(0) : b.size(1);
  LN_CHECK(k == kb, "gemm: inner dimensions differ: op(A) is [", m, ", ", k, "], op(B) is [", kb, ", ", n, "]");
  LN_CHECK(c.size(0) == m && c.size(1) == n, "gemm: C is ", c.shape().str(), " but op(A) op(B) is [", m, ", ", n, "]");
  if (c.numel() == 0) return;
  if (k == 0) {
    if (beta == 0.f) c.zero_();
    else axpby(0.f, c, beta, c);
    return;
  }
  g_flops += 2ull * static_cast<std::uint64_t>(m) * static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(k);
  LN_DISPATCH(a.device(), gemm, a, trans_a, b, trans_b, alpha, beta, c);
}

Tensor matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b) {
  check_float("matmul", a, "A");
  LN_CHECK(a.dim() == 2 && b.defined() && b.dim() == 2, "matmul: operands must be 2-D");
  Tensor c = Tensor::empty(Shape{trans_a ? a.size(1) : a.size(0), trans_b ? b.size(0) : b.size(1)}, a.dtype(), a.device());
  gemm(a, trans_a, b, trans_b, 1.f, 0.f, c);
  return c;
}

void bias_add_(Tensor& y, const Tensor& bias) {
  check_float("bias_add", y, "input");
  check_float("bias_add", bias, "bias");
  LN_CHECK(bias.dim() == 1 && y.dim() >= 1 && bias.size(0) == y.size(-1), "bias_add: bias ", bias.shape().str(),
           " does not match the last dimension of ", y.shape().str());
  check_same_device("bias_add", y, bias);
  if (y.numel() == 0) return;
  LN_DISPATCH(y.device(), bias_add, y, bias);
}

Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& bias) {
  check_float("linear", x, "input");
  check_float("linear", w, "weight");
  LN_CHECK(x.dim() == 2, "linear: input must be [N, in_features], got ", x.shape().str());
  LN_CHECK(w.dim() == 2, "linear: weight must be [out_features, in_features], got ", w.shape().str());
  LN_CHECK(x.size(1) == w.size(1), "linear: input has ", x.size(1), " features but the weight ", w.shape().str(),
           " expects ", w.size(1));
  Tensor y = matmul(x, false, w.dtype() == x.dtype() ? w : w.to(x.dtype()), true);
  if (bias.defined()) bias_add_(y, bias);
  return y;
}

// ---- element-wise with gradients ------------------------------------------------------------------------------

Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy) {
  check_float(unary_op_name(op), dy, "output gradient");
  check_same_shape(unary_op_name(op), x, dy);
  check_same_shape(unary_op_name(op), y, dy);
  check_same_dtype(unary_op_name(op), x, dy);
  check_same_dtype(unary_op_name(op), y, dy);
  Tensor dx = Tensor::empty(dy.shape(), dy.dtype(), dy.device());
  if (dx.numel() == 0) return dx;
  LN_DISPATCH(dy.device(), unary_backward, op, x, y, dy, dx);
  return dx;
}

Tensor scale_by(const Tensor& x, const Tensor& a) {
  check_float("scale_by", x, "input");
  check_scalar_f32("scale_by", a, "the scale");
  check_same_device("scale_by", x, a);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (y.numel() == 0) return y;
  LN_DISPATCH(x.device(), scale_by, x, a, y);
  return y;
}

Tensor broadcast_scalar(const Tensor& s, float scale, const Shape& shape, DType dtype) {
  check_float("broadcast_scalar", s, "scalar");
  LN_CHECK(s.numel() == 1, "broadcast_scalar: expected one element, got shape ", s.shape().str());
  Tensor out = Tensor::empty(shape, dtype, s.device());
  if (out.numel() == 0) return out;
  LN_DISPATCH(s.device(), broadcast_scalar, s, scale, out);
  return out;
}

// ---- dropout -----------------------------------------------------------------------------------------------------

Tensor dropout_forward(const Tensor& x, float p, std::uint64_t seed, std::uint64_t stream) {
  check_float("dropout", x, "input");
  LN_CHECK(p >= 0.f && p <= 1.f, "dropout: probability must be in [0, 1], got ", p);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (y.numel() == 0) return y;
  LN_DISPATCH(x.device(), dropout, x, p, seed, stream, y);
  return y;
}

Tensor dropout_backward(const Tensor& dy, float p, std::uint64_t seed, std::uint64_t stream) {
  return dropout_forward(dy, p, seed, stream);  // the same mask and scale
}

// ---- losses ------------------------------------------------------------------------------------------------------

namespace {
void check_labels(const char* op, const Tensor& labels, std::int64_t n, std::int64_t k) {
  LN_CHECK(labels.defined(), op, ": labels are undefined");
  LN_CHECK(labels.dtype() == DType::i32 || labels.dtype() == DType::i64, op, ": labels must be i32 or i64, got ",
           dtype_name(labels.dtype()));
  LN_CHECK(labels.dim() == 1 && labels.size(0) == n, op, ": labels must have shape [", n, "], got ",
           labels.shape().str());
  // Host labels are checked here, so that a bad one is an error naming it. Labels already on a GPU are
  // not read back (that would stall the device once per step): they come from a dataset that checked
  // their range when it was loaded, and the kernels turn one outside [0, k) into a NaN loss and NaN
  // gradients (which training reports as non-finite), never into a read out of bounds.
  if (!labels.is_cpu()) return;
  const std::vector<std::int64_t> v = labels.to_vector<std::int64_t>();
  for (std::size_t i = 0; i < v.size(); ++i)
    LN_CHECK(v[i] >= 0 && v[i] < k, op, ": label ", v[i], " of sample ", i, " is outside [0, ", k, ")");
}
}  // namespace

Tensor softmax_cross_entropy_forward(const Tensor& logits, const Tensor& labels, const Tensor& class_weights,
                                     float label_smoothing, CrossEntropyState& state) {
  check_float("cross_entropy", logits, "logits");
  check_rank("cross_entropy", logits, 2, "logits", "N, classes");
  const std::int64_t n = logits.size(0), k = logits.size(1);
  LN_CHECK(n > 0 && k > 0, "cross_entropy: empty logits ", logits.shape().str());
  check_labels("cross_entropy", labels, n, k);
  check_same_device("cross_entropy", logits, labels);
  check_vector("cross_entropy", class_weights, k, "class weights");
  if (class_weights.defined()) check_same_device("cross_entropy", logits, class_weights);
  LN_CHECK(label_smoothing >= 0.f && label_smoothing <= 1.f, "cross_entropy: label smoothing must be in [0, 1]");
  state.probs = Tensor::empty(logits.shape(), DType::f32, logits.device());
  state.normalizer = Tensor::empty(Shape{1}, DType::f32, logits.device());
  Tensor loss = Tensor::empty(Shape{}, DType::f32, logits.device());
  LN_DISPATCH(logits.device(), softmax_cross_entropy_forward, logits, labels, class_weights, label_smoothing,
              state.probs, loss, state.normalizer);
  return loss;
}

Tensor softmax_cross_entropy_backward(const Tensor& dloss, const Tensor& labels, const Tensor& class_weights,
                                      float label_smoothing, const CrossEntropyState& state, DType logits_dtype) {
  check_scalar_f32("cross_entropy backward", dloss, "the loss gradient");
  Tensor d = Tensor::empty(state.probs.shape(), logits_dtype, state.probs.device());
  LN_DISPATCH(d.device(), softmax_cross_entropy_backward, dloss, labels, class_weights, label_smoothing, state.probs,
              state.normalizer, d);
  return d;
}

Tensor softmax(const Tensor& logits) {
  check_float("softmax", logits, "logits");
  LN_CHECK(logits.dim() >= 1 && logits.size(-1) > 0, "softmax: needs a non-empty last dimension");
  Tensor p = Tensor::empty(logits.shape(), DType::f32, logits.device());
  if (p.numel() == 0) return p;
  LN_DISPATCH(logits.device(), softmax, logits, p);
  return p;
}

namespace {
Tensor same_as(const char* op, const Tensor& t, const Tensor& like, const char* which) {
  if (!t.defined()) return t;
  check_float(op, t, which);
  LN_CHECK(t.shape() == like.shape(), op, ": ", which, " ", t.shape().str(), " must match the input ",
           like.shape().str());
  check_same_device(op, t, like);
  return t.dtype() == like.dtype() ? t : t.to(like.dtype());
}
}  // namespace

Tensor bce_with_logits_forward(const Tensor& logits, const Tensor& targets, const Tensor& weight) {
  check_float("binary_cross_entropy_with_logits", logits, "logits");
  LN_CHECK(logits.numel() > 0, "binary_cross_entropy_with_logits: empty input");
  LN_CHECK(targets.defined(), "binary_cross_entropy_with_logits: targets are undefined");
  const Tensor t = same_as("binary_cross_entropy_with_logits", targets, logits, "targets");
  const Tensor w = same_as("binary_cross_entropy_with_logits", weight, logits, "weight");
  Tensor loss = Tensor::empty(Shape{}, DType::f32, logits.device());
  LN_DISPATCH(logits.device(), bce_with_logits, logits, t, w, loss);
  return loss;
}

Tensor bce_with_logits_backward(const Tensor& dloss, const Tensor& logits, const Tensor& targets, const Tensor& weight) {
  check_scalar_f32("binary_cross_entropy_with_logits backward", dloss, "the loss gradient");
  const Tensor t = same_as("binary_cross_entropy_with_logits", targets, logits, "targets");
  const Tensor w = same_as("binary_cross_entropy_with_logits", weight, logits, "weight");
  Tensor d = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
  LN_DISPATCH(logits.device(), bce_with_logits_backward, dloss, logits, t, w, d);
  return d;
}

Tensor bce_forward(const Tensor& probs, const Tensor& targets) {
  check_float("binary_cross_entropy", probs, "probabilities");
  LN_CHECK(probs.numel() > 0, "binary_cross_entropy: empty input");
  LN_CHECK(targets.defined(), "binary_cross_entropy: targets are undefined");
  const Tensor t = same_as("binary_cross_entropy", targets, probs, "targets");
  Tensor loss = Tensor::empty(Shape{}, DType::f32, probs.device());
  LN_DISPATCH(probs.device(), bce, probs, t, loss);
  return loss;
}

Tensor bce_backward(const Tensor& dloss, const Tensor& probs, const Tensor& targets) {
  check_scalar_f32("binary_cross_entropy backward", dloss, "the loss gradient");
  const Tensor t = same_as("binary_cross_entropy", targets, probs, "targets");
  Tensor d = Tensor::empty(probs.shape(), probs.dtype(), probs.device());
  LN_DISPATCH(probs.device(), bce_backward, dloss, probs, t, d);
  return d;
}

}  // namespace livernet::kernels
