#include "kernels/optim_ops.h"

#include "kernels/backend.h"

namespace livernet::kernels {

namespace {
void check_state(const char* op, const Tensor& param, const Tensor& t, const char* which) {
  LN_CHECK(t.defined(), op, ": ", which, " is undefined");
  check_dtype(op, t, DType::f32, which);
  check_same_shape(op, param, t);
  check_same_device(op, param, t);
}
}  // namespace

void sgd_update(Tensor& param, const Tensor& grad, Tensor& buf, const SgdHyper& h) {
  check_state("sgd", param, param, "parameter");
  check_state("sgd", param, grad, "gradient");
  if (h.momentum != 0.f) check_state("sgd", param, buf, "momentum buffer");
  if (param.numel() == 0) return;
  LN_DISPATCH(param.device(), sgd_update, param, grad, buf, h);
}

void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamHyper& h) {
  check_state("adam", param, param, "parameter");
  check_state("adam", param, grad, "gradient");
  check_state("adam", param, m, "first moment");
  check_state("adam", param, v, "second moment");
  if (param.numel() == 0) return;
  LN_DISPATCH(param.device(), adam_update, param, grad, m, v, h);
}

Tensor grad_stats(const Tensor& x) {
  LN_CHECK(x.defined() && is_floating(x.dtype()), "grad_stats: needs a floating tensor");
  Tensor out = Tensor::zeros(Shape{2}, DType::f32, x.device());
  if (x.numel() == 0) return out;
  LN_DISPATCH(x.device(), grad_stats, x, out);
  return out;
}

}  // namespace livernet::kernels
