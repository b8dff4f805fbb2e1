// Tracing: while a trace::Recorder is alive on a thread, every differentiable op of functional.h that the
// thread runs appends what it did (op, input and output tensors, parameters) to the recorder, in order.
// A forward pass run under a Recorder is the model's computation graph as the engine ran it, with the
// parameters and buffers as inputs; models/onnx.h turns it into an ONNX graph. Ops that return their input
// unchanged (dropout in eval mode, a cast to the same dtype) leave no record.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/conv.h"
#include "kernels/elementwise.h"
#include "kernels/pool.h"

namespace livernet::trace {

enum class OpKind {
  conv2d,           // inputs x, w, bias (bias may be undefined); conv
  batch_norm,       // inputs x, gamma (may be undefined), beta, running mean, running var; training, eps, relu
  unary,            // input x; unary
  binary,           // inputs a, b; binary (add, sub, mul)
  scale,            // input x; alpha
  scale_by,         // inputs x, a (one element)
  max_pool2d,       // input x; pool
  avg_pool2d,       // input x; pool
  global_avg_pool,  // input x: [N, H, W, C] -> [N, C]
  concat,           // inputs xs; axis (non-negative)
  linear,           // inputs x, w, bias (may be undefined)
  dropout,          // input x (training mode only: in eval mode dropout is the identity and not recorded)
  reshape,          // input x; shape
  cast,             // input x; to the output's dtype
  softmax,          // input x: over the last dimension
  other,            // anything else (losses, reductions): name says which
};

struct Op {
  OpKind kind = OpKind::other;
  std::string name;  // the op's name in messages ("conv2d", "batch_norm", "relu", ...)
  std::vector<Tensor> inputs;
  Tensor output;
  kernels::Conv2dParams conv;
  kernels::Pool2dParams pool;
  kernels::UnaryOp unary{};
  kernels::BinaryOp binary{};
  int axis = 0;
  float alpha = 1.f, eps = 0.f;
  bool training = false, relu = false;
  std::vector<std::int64_t> shape;
};

// Records the ops of its thread from construction to destruction (not nested: a second Recorder on the
// same thread throws). Recorded tensors are held, so no tensor's identity is reused while recording.
class Recorder {
 public:
  Recorder();
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;
  const std::vector<Op>& ops() const { return ops_; }
  void add(Op op) { ops_.push_back(std::move(op)); }

 private:
  std::vector<Op> ops_;
};

// The recorder of this thread, or nullptr (what every op in functional.cpp asks; one thread-local read).
Recorder* active();

}  // namespace livernet::trace
