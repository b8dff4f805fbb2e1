// Reverse-mode automatic differentiation on a dynamic tape.
//
// A differentiable op computes its output, then (when grad mode is on and an input requires grad)
// records a Node that holds exactly what its backward needs, with one edge per input: to the node that
// produced that input, or to the input itself when it is a leaf that requires grad. backward() walks
// the nodes reachable from the root in reverse topological order, sums the gradients arriving at each
// node (a tensor used twice receives the sum), accumulates leaf gradients in the leaf's dtype (f32
// for parameters) and frees every node's saved tensors as soon as it has run.
#pragma once

#include <initializer_list>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/tensor_ops.h"

namespace livernet {

class Node {
 public:
  struct Edge {
    std::shared_ptr<Node> node;         // producer of the input, or
    std::shared_ptr<TensorImpl> leaf;   // the input itself when it is a leaf that requires grad
    Shape shape;                        // the input's shape (checked against the gradient)
    DType dtype = DType::f32;
    bool active() const { return node || leaf; }
  };

  explicit Node(std::string name) : name_(std::move(name)) {}
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& name() const { return name_; }
  // Gradients with respect to each input, in the order the inputs were recorded. An undefined tensor
  // means "no gradient for this input". Only called for inputs whose edge is active.
  virtual std::vector<Tensor> backward(const Tensor& grad_output) = 0;
  // Drops the tensors saved for backward.
  virtual void release_saved() {}
  // Whether input i needs a gradient (lets backward skip work).
  bool needs_input_grad(std::size_t i) const { return i < edges_.size() && edges_[i].active(); }

  std::vector<Edge>& edges() { return edges_; }
  bool released() const { return released_; }
  void mark_released() { released_ = true; }

 private:
  std::string name_;
  std::vector<Edge> edges_;
  bool released_ = false;
};

// Grad mode (thread-local). Off inside NoGradGuard: ops record nothing.
bool grad_enabled();
void set_grad_enabled(bool on);

class NoGradGuard {
 public:
  NoGradGuard() : previous_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when grad mode is on and any defined input requires grad.
bool any_requires_grad(std::initializer_list<Tensor> inputs);
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Connects `output` to `node`, whose edges are built from `inputs` (undefined inputs get inactive
// edges). Does nothing when no input requires grad or grad mode is off.
void record(Tensor& output, const std::shared_ptr<Node>& node, std::initializer_list<Tensor> inputs);
void record(Tensor& output, const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs);

// Marks `output` of a non-differentiable op: backward through it throws an Error naming `op`.
void record_non_differentiable(Tensor& output, const char* op, std::initializer_list<Tensor> inputs);

// Back-propagates from `root`: gradients reach every leaf that requires grad (Tensor::grad()). A
// non-scalar root needs a seed gradient of its shape; retain_graph keeps the saved tensors for another pass.
void backward(const Tensor& root, const Tensor& seed = Tensor(), bool retain_graph = false);
// The same, calling `on_leaf_ready(leaf)` for each leaf that requires grad as soon as the pass has added the
// last gradient it will add to it (the leaf's grad is final for this pass), on the calling thread, in the order
// the leaves finish. Data-parallel training starts sending a group of gradients while the pass goes on
// (dist/data_parallel.h). A leaf that no gradient reaches is not reported.
void backward(const Tensor& root, const Tensor& seed, bool retain_graph,
              const std::function<void(TensorImpl& leaf)>& on_leaf_ready);

// Backward profiling (tools/bench --profile): while enabled, every node's backward is timed (with `sync`
// called before and after it, so GPU work is attributed to the op that queued it) and summed per op name;
// "(gradient sums)" is the time spent adding gradients that meet at a shared input.
struct BackwardOpTime {
  double ms = 0;
  std::int64_t calls = 0;
};
void enable_backward_profiling(std::function<void()> sync);
void disable_backward_profiling();
// The times gathered since enabling (or the last take), largest first; clears them.
std::vector<std::pair<std::string, BackwardOpTime>> take_backward_profile();

}  // namespace livernet
