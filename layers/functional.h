// Differentiable operations: each computes its result with the raw kernels (kernels/elementwise.h,
// kernels/nn.h) and, when an input requires grad, records a Node holding exactly what its backward
// needs (autograd/autograd.h). These are what layers and models are built from.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "autograd/autograd.h"
#include "core/tensor.h"
#include "kernels/elementwise.h"
#include "kernels/nn.h"

namespace livernet::F {

using kernels::Conv2dParams;
using kernels::Pool2dParams;

// x [N,H,W,Cin], w [Cout,kh,kw,Cin/groups] (OHWI), bias [Cout] or undefined.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p);
// Batch norm over the last dimension. training: batch statistics (and running-stat update when the
// running tensors are defined); else running statistics. gamma may be undefined (Keras: no scale).
// relu fuses max(., 0) into the same pass, forward and backward.
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean, Tensor& running_var,
                  bool training, float momentum, float eps, bool relu = false);
Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor unary(kernels::UnaryOp op, const Tensor& x);
Tensor max_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p);
// [N,H,W,C] -> [N,C]
Tensor global_avg_pool(const Tensor& x);
Tensor concat(const std::vector<Tensor>& xs, int axis);
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& x, float alpha);
// y = a * x with a one-element f32 tensor a (e.g. a learnable residual scale).
Tensor scale_by(const Tensor& x, const Tensor& a);

// Data-parallel training (dist/data_parallel.h): while set on a thread, that thread's batches are rows
// [row0, row0 + rows) of a batch of total_rows rows spread over several processes. Dropout then draws each
// row's mask as it would for the whole batch; with all_reduce_sum set (synchronised batch norm), training-mode
// batch norms take their mean and variance over the whole batch, calling all_reduce_sum (the sum over the
// processes of a small f32 tensor, in place) twice forward and once backward per layer, in the same order
// on every process; the parameters' gradients stay this process's part (DataParallel sums them).
struct BatchShard {
  std::int64_t row0 = 0, rows = 0, total_rows = 0;
  std::function<void(Tensor&)> all_reduce_sum;
};
// nullptr: off. The caller keeps `shard` alive while it is set (and, with synchronised batch norm, until the
// backward pass of what was computed under it has run).
void set_batch_shard(const BatchShard* shard);
const BatchShard* batch_shard();

// x [N,in], w [out,in], bias [out] or undefined.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias);
// Inverted dropout with a Philox mask fixed by (seed, stream); identity when !training or p == 0.
Tensor dropout(const Tensor& x, float p, bool training, std::uint64_t seed, std::uint64_t stream);
// Mean softmax cross-entropy (f32 scalar); labels i32/i64 [N]; optional class weights [K] f32.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, const Tensor& class_weights = Tensor(),
                     float label_smoothing = 0.f);
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets, const Tensor& weight = Tensor());
Tensor binary_cross_entropy(const Tensor& probs, const Tensor& targets);
// Sum / mean of all elements as an f32 scalar.
Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x);
Tensor reshape(const Tensor& x, const std::vector<std::int64_t>& shape);
// Differentiable dtype conversion (autocast): the gradient is converted back.
Tensor cast(const Tensor& x, DType dtype);
// Softmax over the last dimension (f32). Not differentiable: for inference and reports.
Tensor softmax(const Tensor& logits);

}  // namespace livernet::F
