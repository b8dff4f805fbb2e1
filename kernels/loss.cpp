// Front end of the losses.
#include "kernels/loss.h"

#include "kernels/backend.h"
#include "kernels/checks.h"
#include "kernels/tensor_ops.h"

namespace livernet::kernels {

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
  return t.dtype() == like.dtype() ? t : to_dtype(t, like.dtype());
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
