// Front end of pooling.
#include "kernels/pool.h"

#include "kernels/backend.h"
#include "kernels/checks.h"
#include "kernels/tensor_ops.h"

namespace livernet::kernels {

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
  return x.dtype() == DType::f32 ? m : to_dtype(m, x.dtype());
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

}  // namespace livernet::kernels
