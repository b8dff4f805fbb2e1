#include "kernels/optim.h"

#include <string>

#include "kernels/backend.h"
#include "kernels/tensor_ops.h"

namespace livernet::kernels {

namespace {
void check_state(const char* op, const Tensor& param, const Tensor& t, const char* which) {
  LN_CHECK(t.defined(), op, ": ", which, " is undefined");
  check_dtype(op, t, DType::f32, which);
  check_same_shape(op, param, t);
  check_same_device(op, param, t);
}

// check_state for entry i of a multi-tensor list, with `device` the list's: the message (built only on
// failure, as this runs for every parameter of every step) names the entry.
void check_entry(const char* op, std::size_t i, const Tensor& param, const Tensor& t, const char* which, Device device) {
  if (t.defined() && t.dtype() == DType::f32 && t.shape() == param.shape() && t.device() == device) return;
  const std::string where = str_cat(op, " (parameter ", i, ")");
  LN_CHECK(param.defined(), where, ": parameter is undefined");
  LN_CHECK(param.device() == device, where, ": tensors are on different devices: ", param.device().str(), " vs ",
           device.str(), " (parameter 0)");
  check_state(where.c_str(), param, t, which);
}

// found_inf / grad_mul of the multi-tensor updates: absent, or one f32 value on the parameters' device.
void check_scalar(const char* op, const Tensor& t, const char* which, Device device) {
  if (!t.defined()) return;
  LN_CHECK(t.numel() == 1 && t.dtype() == DType::f32, op, ": ", which, " must be a one-element f32 tensor, got ",
           t.shape().str(), " ", dtype_name(t.dtype()));
  LN_CHECK(t.device() == device, op, ": ", which, " is on ", t.device().str(), ", the parameters on ", device.str());
}

void check_list_size(const char* op, std::size_t n, std::size_t params, const char* which) {
  LN_CHECK(n == params, op, ": ", n, " ", which, " for ", params, " parameters");
}
}  // namespace

void sgd_update(Tensor& param, const Tensor& grad, Tensor& buf, const SgdHyper& h, const SgdParamHyper& ph) {
  check_state("sgd", param, param, "parameter");
  check_state("sgd", param, grad, "gradient");
  if (h.momentum != 0.f) check_state("sgd", param, buf, "momentum buffer");
  if (param.numel() == 0) return;
  LN_DISPATCH(param.device(), sgd_update, param, grad, buf, h, ph);
}

void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamHyper& h, float weight_decay) {
  check_state("adam", param, param, "parameter");
  check_state("adam", param, grad, "gradient");
  check_state("adam", param, m, "first moment");
  check_state("adam", param, v, "second moment");
  if (param.numel() == 0) return;
  LN_DISPATCH(param.device(), adam_update, param, grad, m, v, h, weight_decay);
}

void sgd_update_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& momentum_bufs, const std::vector<SgdParamHyper>& per_param,
                      const SgdHyper& h, const Tensor& found_inf, const Tensor& grad_mul) {
  constexpr const char* op = "sgd_update_multi";
  check_list_size(op, grads.size(), params.size(), "gradients");
  check_list_size(op, momentum_bufs.size(), params.size(), "momentum buffers");
  check_list_size(op, per_param.size(), params.size(), "per-parameter settings");
  if (params.empty()) return;
  const Device device = params[0].device();
  for (std::size_t i = 0; i < params.size(); ++i) {
    check_entry(op, i, params[i], params[i], "parameter", device);
    check_entry(op, i, params[i], grads[i], "gradient", device);
    if (h.momentum != 0.f) check_entry(op, i, params[i], momentum_bufs[i], "momentum buffer", device);
  }
  check_scalar(op, found_inf, "found_inf", device);
  check_scalar(op, grad_mul, "grad_mul", device);
  LN_DISPATCH(device, sgd_update_multi, params, grads, momentum_bufs, per_param, h, found_inf, grad_mul);
}

void adam_update_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& m,
                       const std::vector<Tensor>& v, const std::vector<float>& weight_decays, const AdamHyper& h,
                       const Tensor& found_inf, const Tensor& grad_mul) {
  constexpr const char* op = "adam_update_multi";
  check_list_size(op, grads.size(), params.size(), "gradients");
  check_list_size(op, m.size(), params.size(), "first moments");
  check_list_size(op, v.size(), params.size(), "second moments");
  check_list_size(op, weight_decays.size(), params.size(), "weight decays");
  if (params.empty()) return;
  const Device device = params[0].device();
  for (std::size_t i = 0; i < params.size(); ++i) {
    check_entry(op, i, params[i], params[i], "parameter", device);
    check_entry(op, i, params[i], grads[i], "gradient", device);
    check_entry(op, i, params[i], m[i], "first moment", device);
    check_entry(op, i, params[i], v[i], "second moment", device);
  }
  check_scalar(op, found_inf, "found_inf", device);
  check_scalar(op, grad_mul, "grad_mul", device);
  LN_DISPATCH(device, adam_update_multi, params, grads, m, v, weight_decays, h, found_inf, grad_mul);
}

Tensor grad_stats(const Tensor& x) {
  LN_CHECK(x.defined() && is_floating(x.dtype()), "grad_stats: needs a floating tensor");
  Tensor out = zeros(Shape{2}, DType::f32, x.device());
  if (x.numel() == 0) return out;
  LN_DISPATCH(x.device(), grad_stats, x, out);
  return out;
}

void grad_stats_multi(const std::vector<Tensor>& grads, Tensor& out) {
  LN_CHECK(out.defined() && out.dtype() == DType::f32 && out.shape() == Shape{2},
           "grad_stats_multi: out must be a [2] f32 tensor, got ", out.defined() ? out.shape().str() : "undefined",
           out.defined() ? str_cat(" ", dtype_name(out.dtype())) : "");
  std::int64_t total = 0;
  for (std::size_t i = 0; i < grads.size(); ++i) {
    const Tensor& g = grads[i];
    LN_CHECK(g.defined() && is_floating(g.dtype()), "grad_stats_multi: tensor ", i, " must be a defined float tensor");
    LN_CHECK(g.device() == out.device(), "grad_stats_multi: tensor ", i, " is on ", g.device().str(), ", out on ",
             out.device().str());
    total += g.numel();
  }
  if (total == 0) {
    zero_(out);
    return;
  }
  LN_DISPATCH(out.device(), grad_stats_multi, grads, out);
}

}  // namespace livernet::kernels
