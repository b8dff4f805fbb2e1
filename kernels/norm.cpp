// Front end of batch normalisation.
#include "kernels/norm.h"

#include "kernels/backend.h"
#include "kernels/checks.h"
#include "kernels/tensor_ops.h"

namespace livernet::kernels {

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

}  // namespace livernet::kernels
