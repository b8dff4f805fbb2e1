// Front ends of the element-wise, random and reduction ops: validation, then LN_DISPATCH.
#include "kernels/elementwise.h"

#include <algorithm>

#include "kernels/backend.h"
#include "kernels/checks.h"
#include "kernels/tensor_ops.h"

namespace livernet::kernels {

namespace detail {
void no_cuda_backend(const char* op) {
  LN_FAIL("'", op, "' on a CUDA tensor: ", cuda_unavailable_reason());
}
}  // namespace detail

const char* unary_op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg: return "neg";
    case UnaryOp::abs: return "abs";
    case UnaryOp::relu: return "relu";
    case UnaryOp::exp: return "exp";
    case UnaryOp::log: return "log";
    case UnaryOp::sqrt: return "sqrt";
    case UnaryOp::rsqrt: return "rsqrt";
    case UnaryOp::sigmoid: return "sigmoid";
    case UnaryOp::tanh: return "tanh";
    case UnaryOp::square: return "square";
    case UnaryOp::reciprocal: return "reciprocal";
  }
  return "?";
}

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
    case BinaryOp::div: return "div";
    case BinaryOp::maximum: return "maximum";
    case BinaryOp::minimum: return "minimum";
  }
  return "?";
}

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return "sum";
    case ReduceOp::mean: return "mean";
    case ReduceOp::max: return "max";
    case ReduceOp::min: return "min";
  }
  return "?";
}


void fill(Tensor& t, double value) {
  LN_CHECK(t.defined(), "fill: tensor is undefined");
  if (t.numel() == 0) return;
  LN_DISPATCH(t.device(), fill, t, value);
}

void cast(const Tensor& src, Tensor& dst) {
  LN_CHECK(src.defined() && dst.defined(), "cast: undefined tensor");
  LN_CHECK(src.numel() == dst.numel(), "cast: ", src.shape().str(), " vs ", dst.shape().str());
  check_same_device("cast", src, dst);
  if (src.numel() == 0) return;
  if (src.dtype() == dst.dtype()) {
    if (src.data_ptr() != dst.data_ptr()) livernet::detail::copy_bytes(dst.data_ptr(), dst.device(), src.data_ptr(), src.device(), src.nbytes());
    return;
  }
  LN_DISPATCH(src.device(), cast, src, dst);
}

void arange_fill(Tensor& t, double start, double step) {
  LN_CHECK(t.defined(), "arange: tensor is undefined");
  if (t.numel() == 0) return;
  LN_DISPATCH(t.device(), arange_fill, t, start, step);
}

void random_fill(Tensor& t, RandomDist dist, std::uint64_t seed, std::uint64_t stream, float a, float b) {
  check_float("random_fill", t, "tensor");
  if (dist == RandomDist::uniform) LN_CHECK(a <= b, "rand: lower bound ", a, " above upper bound ", b);
  if (dist == RandomDist::normal) LN_CHECK(b >= 0.f, "randn: negative standard deviation ", b);
  if (t.numel() == 0) return;
  LN_DISPATCH(t.device(), random_fill, t, dist, seed, stream, a, b);
}

void unary(UnaryOp op, const Tensor& x, Tensor& out) {
  check_float(unary_op_name(op), x);
  check_same_shape(unary_op_name(op), x, out);
  check_same_dtype(unary_op_name(op), x, out);
  check_same_device(unary_op_name(op), x, out);
  if (x.numel() == 0) return;
  LN_DISPATCH(x.device(), unary, op, x, out);
}

Tensor unary(UnaryOp op, const Tensor& x) {
  check_float(unary_op_name(op), x);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  unary(op, x, out);
  return out;
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  const char* name = binary_op_name(op);
  check_float(name, a, "first input");
  check_float(name, b, "second input");
  check_same_shape(name, a, b);
  check_same_dtype(name, a, b);
  check_same_device(name, a, b);
  check_same_shape(name, a, out);
  check_same_dtype(name, a, out);
  check_same_device(name, a, out);
  if (a.numel() == 0) return;
  LN_DISPATCH(a.device(), binary, op, a, b, out);
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  check_float(binary_op_name(op), a, "first input");
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  binary(op, a, b, out);
  return out;
}

void axpby(float alpha, const Tensor& x, float beta, Tensor& y) {
  check_float("axpby", x, "x");
  check_float("axpby", y, "y");
  check_same_shape("axpby", x, y);
  check_same_device("axpby", x, y);
  if (y.numel() == 0) return;
  if (x.dtype() != y.dtype()) {
    const Tensor xc = to_dtype(x, y.dtype());
    LN_DISPATCH(y.device(), axpby, alpha, xc, beta, y);
    return;
  }
  LN_DISPATCH(y.device(), axpby, alpha, x, beta, y);
}

Tensor scale(const Tensor& x, float alpha) {
  check_float("scale", x);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.numel() == 0) return out;
  LN_DISPATCH(x.device(), axpby, alpha, x, 0.f, out);
  return out;
}

Tensor reduce_all(ReduceOp op, const Tensor& x) {
  check_float(reduce_op_name(op), x);
  LN_CHECK(x.numel() > 0 || op == ReduceOp::sum || op == ReduceOp::mean, reduce_op_name(op),
           " of an empty tensor");
  Tensor out = Tensor::empty(Shape{}, DType::f32, x.device());
  if (x.numel() == 0) {
    fill_(out, op == ReduceOp::sum ? 0.0 : std::nan(""));
    return out;
  }
  LN_DISPATCH(x.device(), reduce, op, x, 1, x.numel(), 1, out);
  return out;
}

Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int>& axes_in, bool keepdim) {
  const char* name = reduce_op_name(op);
  check_float(name, x);
  const int nd = x.dim();
  std::vector<bool> reduced(static_cast<std::size_t>(nd), false);
  for (int a : axes_in) {
    const int ax = a < 0 ? a + nd : a;
    LN_CHECK(ax >= 0 && ax < nd, name, ": axis ", a, " out of range for shape ", x.shape().str());
    LN_CHECK(!reduced[ax], name, ": axis ", a, " listed twice");
    reduced[ax] = true;
  }
  Shape out_shape;
  for (int i = 0; i < nd; ++i) {
    if (!reduced[i]) out_shape.push_back(x.size(i));
    else if (keepdim) out_shape.push_back(1);
  }
  // Reduce one maximal run of reduced axes at a time, innermost first; each run is a [outer, r, inner] view.
  Tensor cur = x;
  std::vector<std::int64_t> cur_shape = x.shape().vec();
  std::vector<bool> red = reduced;
  int i = nd - 1;
  bool any = false;
  while (i >= 0) {
    if (!red[i]) {
      --i;
      continue;
    }
    int j = i;
    while (j - 1 >= 0 && red[j - 1]) --j;
    std::int64_t outer = 1, r = 1, inner = 1;
    for (int k = 0; k < j; ++k) outer *= cur_shape[k];
    for (int k = j; k <= i; ++k) r *= cur_shape[k];
    for (std::size_t k = i + 1; k < cur_shape.size(); ++k) inner *= cur_shape[k];
    LN_CHECK(r > 0 || op == ReduceOp::sum || op == ReduceOp::mean, name, " over an empty axis of shape ",
             x.shape().str());
    std::vector<std::int64_t> next(cur_shape.begin(), cur_shape.begin() + j);
    next.insert(next.end(), cur_shape.begin() + i + 1, cur_shape.end());
    Tensor out = Tensor::empty(Shape(next), DType::f32, x.device());
    if (out.numel() > 0) {
      if (r == 0) {
        fill_(out, op == ReduceOp::sum ? 0.0 : std::nan(""));
      } else {
        LN_DISPATCH(x.device(), reduce, op, cur, outer, r, inner, out);
      }
    }
    cur = out;
    cur_shape = next;
    red.erase(red.begin() + j, red.begin() + i + 1);
    any = true;
    i = j - 1;
  }
  if (!any) cur = to_dtype(x, DType::f32).clone();
  return cur.view(out_shape);
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

}  // namespace livernet::kernels
