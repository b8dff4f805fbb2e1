#include "autograd/autograd.h"
#include "kernels/tensor_ops.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <unordered_map>
#include <unordered_set>

namespace livernet {

namespace {

thread_local bool tls_grad_enabled = true;

struct Profiler {
  bool on = false;
  std::function<void()> sync;
  std::map<std::string, BackwardOpTime> times;
};
Profiler& profiler() {
  static Profiler p;
  return p;
}
// Times fn() into the profile under `name` when profiling is on.
template <typename Fn>
auto profiled(const std::string& name, Fn&& fn) {
  Profiler& p = profiler();
  if (!p.on) return fn();
  if (p.sync) p.sync();
  const auto t0 = std::chrono::steady_clock::now();
  auto result = fn();
  if (p.sync) p.sync();
  BackwardOpTime& t = p.times[name];
  t.ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ++t.calls;
  return result;
}

class NonDifferentiableNode final : public Node {
 public:
  explicit NonDifferentiableNode(const char* op) : Node(op) {}
  std::vector<Tensor> backward(const Tensor&) override {
    throw Error(str_cat("backward through '", name(), "', which is not differentiable"));
  }
};

Node::Edge make_edge(const Tensor& t) {
  Node::Edge e;
  if (!t.defined()) return e;
  e.shape = t.shape();
  e.dtype = t.dtype();
  if (!t.requires_grad()) return e;
  if (t.grad_fn()) {
    e.node = t.grad_fn();
  } else {
    e.leaf = t.impl_ptr();
  }
  return e;
}

// True when nothing but `t` itself refers to its memory: no other handle, view or saved copy.
bool sole_owner(const Tensor& t) { return t.impl_ptr().use_count() == 1 && t.storage().use_count() == 1; }

// Adds g into the leaf's gradient (in the leaf's dtype). The first gradient is kept as it is when nothing
// else refers to it (the usual case: a fresh tensor from the producing node, so no copy); otherwise it
// is copied, since it may alias a saved tensor or a gradient still on its way elsewhere and the next
// accumulation writes into it.
void accumulate_leaf(TensorImpl& leaf, Tensor g) {
  if (g.dtype() != leaf.dtype) g = to_dtype(g, leaf.dtype);  // a new tensor, owned here
  if (!leaf.grad) {
    if (!sole_owner(g)) g = g.clone();
    leaf.grad = g.impl_ptr();
    return;
  }
  add_(Tensor(leaf.grad), g);
}

// The sum of two gradients meeting at one input, computed in f32 and rounded once to the input's dtype.
// When both already have that dtype it is one in-place kernel (the element-wise kernels compute in f32)
// on `a`, copied first unless nothing else refers to it; otherwise through f32.
Tensor sum_gradients(Tensor a, const Tensor& b, DType dtype) {
  if (a.dtype() == dtype && b.dtype() == dtype) {
    if (!sole_owner(a)) a = a.clone();
    add_(a, b);
    return a;
  }
  Tensor sum = a.dtype() == DType::f32 ? a.clone() : to_dtype(a, DType::f32);
  add_(sum, b);
  return sum.dtype() == dtype ? sum : to_dtype(sum, dtype);
}

}  // namespace

bool grad_enabled() { return tls_grad_enabled; }
void set_grad_enabled(bool on) { tls_grad_enabled = on; }

bool any_requires_grad(std::initializer_list<Tensor> inputs) {
  if (!tls_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!tls_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(Tensor& output, const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs) {
  if (!any_requires_grad(inputs)) return;
  auto& edges = node->edges();
  edges.clear();
  edges.reserve(inputs.size());
  for (const Tensor& t : inputs) edges.push_back(make_edge(t));
  output.impl()->grad_fn = node;
  output.impl()->requires_grad = true;
}

void record(Tensor& output, const std::shared_ptr<Node>& node, std::initializer_list<Tensor> inputs) {
  record(output, node, std::vector<Tensor>(inputs));
}

void record_non_differentiable(Tensor& output, const char* op, std::initializer_list<Tensor> inputs) {
  record(output, std::make_shared<NonDifferentiableNode>(op), inputs);
}

void backward(const Tensor& root, const Tensor& seed_in, bool retain_graph) {
  backward(root, seed_in, retain_graph, nullptr);
}

void backward(const Tensor& root, const Tensor& seed_in, bool retain_graph,
              const std::function<void(TensorImpl& leaf)>& on_leaf_ready) {
  LN_CHECK(root.defined(), "backward: tensor is undefined");
  LN_CHECK(root.requires_grad(), "backward: this tensor does not require grad (none of the inputs it was computed "
                                 "from requires grad, or it was computed under NoGradGuard)");
  Tensor seed = seed_in;
  if (!seed.defined()) {
    LN_CHECK(root.numel() == 1, "backward: the output",
             root.grad_fn() ? str_cat(" of '", root.grad_fn()->name(), "'") : std::string(), " has shape ",
             root.shape().str(), "; a non-scalar output needs a seed gradient of the same shape");
    seed = ones(root.shape(), root.dtype(), root.device());
  } else {
    check_same_shape("backward (seed gradient)", root, seed);
    check_same_device("backward (seed gradient)", root, seed);
  }

  if (!root.grad_fn()) {  // a leaf: its gradient is the seed
    accumulate_leaf(*root.impl(), seed);
    if (on_leaf_ready) on_leaf_ready(*root.impl());
    return;
  }

  // Reverse topological order by iterative depth-first search (post-order, then reversed).
  std::vector<Node*> order;
  {
    std::unordered_set<Node*> visited;
    std::vector<std::pair<Node*, std::size_t>> stack;
    Node* start = root.grad_fn().get();
    stack.emplace_back(start, 0);
    visited.insert(start);
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next < node->edges().size()) {
        Node* child = node->edges()[next++].node.get();
        if (child && visited.insert(child).second) stack.emplace_back(child, 0);
      } else {
        order.push_back(node);
        stack.pop_back();
      }
    }
  }

  // Keep every node alive while we walk, even as edges are cleared.
  std::vector<std::shared_ptr<Node>> keep_alive;
  keep_alive.reserve(order.size());
  keep_alive.push_back(root.grad_fn());
  for (Node* n : order)
    for (auto& e : n->edges())
      if (e.node) keep_alive.push_back(e.node);

  std::unordered_map<Node*, Tensor> pending;
  pending[root.grad_fn().get()] = seed;

  // With on_leaf_ready: how many edges of the graph still lead to each leaf. A node that no gradient reaches
  // releases its edges without a gradient, so the count falls there too, and a leaf is reported once no edge
  // is left that could still add to it (and only when some gradient did reach it).
  std::unordered_map<TensorImpl*, int> leaf_edges;
  if (on_leaf_ready)
    for (Node* n : order)
      for (const auto& e : n->edges())
        if (e.leaf) ++leaf_edges[e.leaf.get()];
  const auto edge_done = [&](TensorImpl* leaf) {
    auto it = leaf_edges.find(leaf);
    if (it == leaf_edges.end() || --it->second > 0) return;
    leaf_edges.erase(it);
    if (leaf->grad) on_leaf_ready(*leaf);
  };

  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = *it;
    auto found = pending.find(node);
    if (found == pending.end()) {  // no gradient reached this node
      if (on_leaf_ready)
        for (const auto& e : node->edges())
          if (e.leaf) edge_done(e.leaf.get());
      continue;
    }
    Tensor grad_out = std::move(found->second);
    pending.erase(found);
    LN_CHECK(!node->released(), "backward through '", node->name(),
             "' a second time: its saved tensors were freed by the first backward (pass retain_graph=true to it)");

    std::vector<Tensor> grads = profiled(node->name(), [&] { return node->backward(grad_out); });
    auto& edges = node->edges();
    LN_CHECK(grads.size() == edges.size(), "autograd: backward of '", node->name(), "' returned ", grads.size(),
             " gradients for ", edges.size(), " inputs");
    for (std::size_t i = 0; i < edges.size(); ++i) {
      const Node::Edge& e = edges[i];
      const Tensor& g = grads[i];  // moved from (last use) when it goes to a leaf
      if (!e.active()) continue;
      if (!g.defined()) {
        if (on_leaf_ready && e.leaf) edge_done(e.leaf.get());
        continue;
      }
      if (!(g.shape() == e.shape)) {
        LN_FAIL("autograd: backward of '", node->name(), "' returned a gradient of shape ", g.shape().str(),
                " for input ", i, " of shape ", e.shape.str());
      }
      if (e.node) {
        auto slot = pending.find(e.node.get());
        if (slot == pending.end()) {
          pending.emplace(e.node.get(), g);
        } else {
          // Either side may alias a tensor still needed elsewhere: sum_gradients adds in place only into
          // a pending gradient that nothing else refers to.
          slot->second = profiled("(gradient sums)", [&] { return sum_gradients(std::move(slot->second), g, e.dtype); });
        }
      } else {
        accumulate_leaf(*e.leaf, std::move(grads[i]));
        if (on_leaf_ready) edge_done(e.leaf.get());
      }
    }
    if (!retain_graph) {
      node->release_saved();
      node->edges().clear();
      node->mark_released();
    }
  }
}

void enable_backward_profiling(std::function<void()> sync) {
  profiler().on = true;
  profiler().sync = std::move(sync);
}

void disable_backward_profiling() {
  profiler().on = false;
  profiler().sync = nullptr;
}

std::vector<std::pair<std::string, BackwardOpTime>> take_backward_profile() {
  std::vector<std::pair<std::string, BackwardOpTime>> v(profiler().times.begin(), profiler().times.end());
  profiler().times.clear();
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
  return v;
}

}  // namespace livernet
