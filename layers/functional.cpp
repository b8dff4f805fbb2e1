#include "layers/functional.h"

#include <functional>
#include <memory>

#include "kernels/tensor_ops.h"
#include "layers/trace.h"

namespace livernet::F {

namespace {

// Convenience: a Node whose backward is a lambda over its saved state.
template <typename Fn>
class LambdaNode final : public Node {
 public:
  LambdaNode(const char* name, Fn fn) : Node(name), fn_(std::move(fn)) {}
  std::vector<Tensor> backward(const Tensor& g) override { return fn_(*this, g); }
  void release_saved() override { fn_ = Fn(fn_.released()); }

 private:
  Fn fn_;
};

// Saved state + backward function in one object, released by dropping the state.
template <typename State, typename Backward>
struct Saved {
  std::shared_ptr<State> state;
  Backward backward;
  std::vector<Tensor> operator()(Node& node, const Tensor& g) {
    LN_CHECK(state, "backward through '", node.name(), "' after its saved tensors were freed");
    return backward(node, *state, g);
  }
  Saved released() const { return Saved{nullptr, backward}; }
};

template <typename State, typename Backward>
std::shared_ptr<Node> make_node(const char* name, State state, Backward backward) {
  using S = Saved<State, Backward>;
  return std::make_shared<LambdaNode<S>>(name, S{std::make_shared<State>(std::move(state)), std::move(backward)});
}

Tensor det(const Tensor& t) { return t.defined() ? t.detach() : t; }

// Appends the op to this thread's trace::Recorder (layers/trace.h); callers ask trace::active() first, so an
// untraced op pays one thread-local read.
void trace_op(trace::OpKind kind, const char* name, std::vector<Tensor> inputs, const Tensor& y,
              const std::function<void(trace::Op&)>& fill = {}) {
  trace::Op op;
  op.kind = kind;
  op.name = name;
  op.inputs = std::move(inputs);
  op.output = y;
  if (fill) fill(op);
  trace::active()->add(std::move(op));
}

}  // namespace

// ---- convolution ------------------------------------------------------------------------------------

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  Tensor y = kernels::conv2d_forward(x, w, bias, p);
  if (trace::active()) trace_op(trace::OpKind::conv2d, "conv2d", {x, w, bias}, y, [&](trace::Op& o) { o.conv = p; });
  if (any_requires_grad({x, w, bias})) {
    struct S {
      Tensor x, w;
      Conv2dParams p;
    };
    auto node = make_node("conv2d", S{det(x), det(w), p}, [](Node& n, S& s, const Tensor& g) {
      std::vector<Tensor> out(3);
      if (n.needs_input_grad(0)) out[0] = kernels::conv2d_backward_data(g, s.w, s.x.shape(), s.p);
      if (n.needs_input_grad(1) || n.needs_input_grad(2)) {
        Tensor dw = Tensor::empty(s.w.shape(), s.w.dtype(), s.w.device());
        Tensor db;
        kernels::conv2d_backward_weights(g, s.x, s.p, dw, n.needs_input_grad(2) ? &db : nullptr);
        if (n.needs_input_grad(1)) out[1] = dw;
        if (n.needs_input_grad(2)) out[2] = db;
      }
      return out;
    });
    record(y, node, {x, w, bias});
  }
  return y;
}

// ---- data-parallel shards -----------------------------------------------------------------------------

namespace {
thread_local const BatchShard* tls_shard = nullptr;

// y = x * a + b per channel (the last dimension), a and b [C] f32: batch_norm_eval with mean 0, variance 1 and
// eps 0, whose 1/sqrt(1 + 0) is exactly 1.
Tensor channel_affine(const Tensor& x, const Tensor& a, const Tensor& b) {
  kernels::BatchNormState unused;
  const std::int64_t c = x.size(-1);
  return kernels::batch_norm_eval(x, a, b, zeros(Shape{c}, DType::f32, x.device()),
                                  ones(Shape{c}, DType::f32, x.device()), 0.f, false, unused);
}

std::vector<int> all_but_last(const Tensor& x) {
  std::vector<int> axes;
  for (int d = 0; d + 1 < x.dim(); ++d) axes.push_back(d);
  return axes;
}

// Batch norm in training mode with the statistics of the whole batch of a data-parallel step: the mean from
// the summed per-channel sums, then the (biased) variance from the summed squares about that mean (two passes,
// as exact as one process's). The normalisation itself is batch_norm_eval with those statistics.
Tensor batch_norm_synced(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                         Tensor& running_var, float momentum, float eps, bool relu, const BatchShard& shard) {
  LN_CHECK(shard.rows > 0 && x.size(0) == shard.rows, "synchronised batch norm: a batch of ", x.size(0),
           " rows where this process's share is ", shard.rows);
  const std::int64_t c = x.size(-1);
  const double count =
      static_cast<double>(x.numel() / c) * static_cast<double>(shard.total_rows) / static_cast<double>(shard.rows);
  const Tensor xf = x.dtype() == DType::f32 ? x : to_dtype(x, DType::f32);
  Tensor mean = kernels::sum(xf, all_but_last(xf));
  shard.all_reduce_sum(mean);
  mean = kernels::scale(mean, static_cast<float>(1.0 / count));
  kernels::BatchNormState unused;  // x - mean: normalised with that mean, variance 1 and eps 0
  const Tensor centred = kernels::batch_norm_eval(xf, Tensor(), zeros(Shape{c}, DType::f32, x.device()), mean,
                                                  ones(Shape{c}, DType::f32, x.device()), 0.f, false, unused);
  Tensor var = kernels::sum(kernels::mul(centred, centred), all_but_last(centred));
  shard.all_reduce_sum(var);
  var = kernels::scale(var, static_cast<float>(1.0 / count));
  kernels::BatchNormState st;
  Tensor y = kernels::batch_norm_eval(x, gamma, beta, mean, var, eps, relu, st);
  if (running_mean.defined()) {  // as batch_norm_train: the unbiased variance goes into the running one
    kernels::axpby(momentum, mean, 1.f - momentum, running_mean);
    kernels::axpby(static_cast<float>(momentum * count / std::max(count - 1.0, 1.0)), var, 1.f - momentum, running_var);
  }
  if (any_requires_grad({x, gamma, beta})) {
    struct S {
      Tensor x, y, gamma;
      kernels::BatchNormState st;
      bool relu;
      double count;
      std::function<void(Tensor&)> all_reduce_sum;
    };
    // dx = gamma invstd (g - sum(g) / N - xhat sum(g xhat) / N) over the whole batch, with g masked by the fused
    // ReLU: the part gamma invstd g of batch_norm_backward with constant statistics, plus x * p + q per channel
    // from the summed sum(g) and sum(g xhat) (which are also this process's dbeta and dgamma).
    auto node = make_node(
        relu ? "batch_norm_relu" : "batch_norm",
        S{det(x), relu ? y.detach() : Tensor(), gamma.defined() ? det(gamma) : ones(Shape{c}, DType::f32, x.device()),
          st, relu, count, shard.all_reduce_sum},
        [](Node& n, S& s, const Tensor& g) {
          Tensor dgamma, dbeta;
          const Tensor dx_part =
              kernels::batch_norm_backward(g, s.x, s.y, s.gamma, s.st, false, s.relu, &dgamma, &dbeta);
          const std::int64_t ch = s.x.size(-1);
          Tensor sums = kernels::concat({dbeta, dgamma}, 0);
          s.all_reduce_sum(sums);
          const Tensor sum_g = sums.slice0(0, ch), sum_gx = sums.slice0(ch, 2 * ch);
          const Tensor k = kernels::scale(kernels::mul(s.gamma, s.st.save_invstd), static_cast<float>(1.0 / s.count));
          const Tensor kb = kernels::mul(kernels::mul(k, s.st.save_invstd), sum_gx);
          const Tensor p = kernels::scale(kb, -1.f);
          const Tensor q = kernels::sub(kernels::mul(kb, s.st.save_mean), kernels::mul(k, sum_g));
          Tensor dx;
          if (n.needs_input_grad(0)) dx = kernels::add(dx_part, channel_affine(s.x, p, q));
          return std::vector<Tensor>{dx, n.needs_input_grad(1) ? dgamma : Tensor(),
                                     n.needs_input_grad(2) ? dbeta : Tensor()};
        });
    record(y, node, {x, gamma, beta});
  }
  return y;
}
}  // namespace

void set_batch_shard(const BatchShard* shard) { tls_shard = shard; }
const BatchShard* batch_shard() { return tls_shard; }

// ---- batch norm --------------------------------------------------------------------------------------

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean, Tensor& running_var,
                  bool training, float momentum, float eps, bool relu) {
  if (training && tls_shard && tls_shard->all_reduce_sum && !trace::active())
    return batch_norm_synced(x, gamma, beta, running_mean, running_var, momentum, eps, relu, *tls_shard);
  kernels::BatchNormState st;
  Tensor y = training ? kernels::batch_norm_train(x, gamma, beta, running_mean, running_var, momentum, eps, relu, st)
                      : kernels::batch_norm_eval(x, gamma, beta, running_mean, running_var, eps, relu, st);
  if (trace::active())
    trace_op(trace::OpKind::batch_norm, relu ? "batch_norm_relu" : "batch_norm",
             {x, gamma, beta, running_mean, running_var}, y, [&](trace::Op& o) {
               o.training = training;
               o.eps = eps;
               o.relu = relu;
             });
  if (any_requires_grad({x, gamma, beta})) {
    struct S {
      Tensor x, y, gamma;
      kernels::BatchNormState st;
      bool training, relu;
    };
    auto node = make_node(relu ? "batch_norm_relu" : "batch_norm", S{det(x), relu ? y.detach() : Tensor(), det(gamma), st, training, relu},
                          [](Node& n, S& s, const Tensor& g) {
                            Tensor dgamma, dbeta;
                            Tensor dx = kernels::batch_norm_backward(g, s.x, s.y, s.gamma, s.st, s.training, s.relu,
                                                                     n.needs_input_grad(1) ? &dgamma : nullptr, &dbeta);
                            return std::vector<Tensor>{n.needs_input_grad(0) ? dx : Tensor(), dgamma,
                                                       n.needs_input_grad(2) ? dbeta : Tensor()};
                          });
    record(y, node, {x, gamma, beta});
  }
  return y;
}

// ---- element-wise ------------------------------------------------------------------------------------

Tensor unary(kernels::UnaryOp op, const Tensor& x) {
  Tensor y = kernels::unary(op, x);
  if (trace::active())
    trace_op(trace::OpKind::unary, kernels::unary_op_name(op), {x}, y, [&](trace::Op& o) { o.unary = op; });
  if (any_requires_grad({x})) {
    struct S {
      Tensor x, y;
      kernels::UnaryOp op;
    };
    auto node = make_node(kernels::unary_op_name(op), S{x.detach(), y.detach(), op}, [](Node&, S& s, const Tensor& g) {
      return std::vector<Tensor>{kernels::unary_backward(s.op, s.x, s.y, g)};
    });
    record(y, node, {x});
  }
  return y;
}

Tensor relu(const Tensor& x) { return F::unary(kernels::UnaryOp::relu, x); }
Tensor sigmoid(const Tensor& x) { return F::unary(kernels::UnaryOp::sigmoid, x); }

namespace {
// add, sub and mul (the differentiable element-wise products the models use).
Tensor binary_op(kernels::BinaryOp op, const Tensor& a, const Tensor& b) {
  LN_CHECK(op == kernels::BinaryOp::add || op == kernels::BinaryOp::sub || op == kernels::BinaryOp::mul,
           "F: no differentiable '", kernels::binary_op_name(op), "'");
  Tensor y = kernels::binary(op, a, b);
  if (trace::active())
    trace_op(trace::OpKind::binary, kernels::binary_op_name(op), {a, b}, y, [&](trace::Op& o) { o.binary = op; });
  if (any_requires_grad({a, b})) {
    struct S {
      Tensor a, b;
      kernels::BinaryOp op;
    };
    const bool save = op == kernels::BinaryOp::mul;
    auto node = make_node(kernels::binary_op_name(op), S{save ? det(a) : Tensor(), save ? det(b) : Tensor(), op},
                          [](Node& n, S& s, const Tensor& g) {
                            std::vector<Tensor> out(2);
                            switch (s.op) {
                              case kernels::BinaryOp::add:
                                out = {g, g};
                                break;
                              case kernels::BinaryOp::sub:
                                out = {g, n.needs_input_grad(1) ? kernels::scale(g, -1.f) : Tensor()};
                                break;
                              default:  // mul
                                if (n.needs_input_grad(0)) out[0] = kernels::mul(g, s.b);
                                if (n.needs_input_grad(1)) out[1] = kernels::mul(g, s.a);
                                break;
                            }
                            return out;
                          });
    record(y, node, {a, b});
  }
  return y;
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary_op(kernels::BinaryOp::add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op(kernels::BinaryOp::sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op(kernels::BinaryOp::mul, a, b); }

Tensor scale(const Tensor& x, float alpha) {
  Tensor y = kernels::scale(x, alpha);
  if (trace::active()) trace_op(trace::OpKind::scale, "scale", {x}, y, [&](trace::Op& o) { o.alpha = alpha; });
  if (any_requires_grad({x})) {
    struct S {
      float alpha;
    };
    record(y, make_node("scale", S{alpha}, [](Node&, S& s, const Tensor& g) {
             return std::vector<Tensor>{kernels::scale(g, s.alpha)};
           }),
           {x});
  }
  return y;
}

Tensor scale_by(const Tensor& x, const Tensor& a) {
  Tensor y = kernels::scale_by(x, a);
  if (trace::active()) trace_op(trace::OpKind::scale_by, "scale_by", {x, a}, y);
  if (any_requires_grad({x, a})) {
    struct S {
      Tensor x, a;
    };
    record(y, make_node("scale_by", S{det(x), det(a)}, [](Node& n, S& s, const Tensor& g) {
             std::vector<Tensor> out(2);
             if (n.needs_input_grad(0)) out[0] = kernels::scale_by(g, s.a);
             if (n.needs_input_grad(1)) out[1] = kernels::sum(kernels::mul(g, s.x)).reshape({1});
             return out;
           }),
           {x, a});
  }
  return y;
}

// ---- pooling ---------------------------------------------------------------------------------------------

Tensor max_pool2d(const Tensor& x, const Pool2dParams& p) {
  Tensor indices;
  const bool grad = any_requires_grad({x});
  Tensor y = kernels::max_pool2d_forward(x, p, indices, grad);
  if (trace::active()) trace_op(trace::OpKind::max_pool2d, "max_pool2d", {x}, y, [&](trace::Op& o) { o.pool = p; });
  if (grad) {
    struct S {
      Tensor indices;
      Shape x_shape;
      Pool2dParams p;
    };
    record(y, make_node("max_pool2d", S{indices, x.shape(), p}, [](Node&, S& s, const Tensor& g) {
             return std::vector<Tensor>{kernels::max_pool2d_backward(g, s.indices, s.x_shape, s.p)};
           }),
           {x});
  }
  return y;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p) {
  Tensor y = kernels::avg_pool2d_forward(x, p);
  if (trace::active()) trace_op(trace::OpKind::avg_pool2d, "avg_pool2d", {x}, y, [&](trace::Op& o) { o.pool = p; });
  if (any_requires_grad({x})) {
    struct S {
      Shape x_shape;
      Pool2dParams p;
    };
    record(y, make_node("avg_pool2d", S{x.shape(), p}, [](Node&, S& s, const Tensor& g) {
             return std::vector<Tensor>{kernels::avg_pool2d_backward(g, s.x_shape, s.p)};
           }),
           {x});
  }
  return y;
}

Tensor global_avg_pool(const Tensor& x) {
  Tensor y = kernels::global_avg_pool_forward(x);
  if (trace::active()) trace_op(trace::OpKind::global_avg_pool, "global_avg_pool", {x}, y);
  if (any_requires_grad({x})) {
    struct S {
      Shape x_shape;
    };
    record(y, make_node("global_avg_pool", S{x.shape()}, [](Node&, S& s, const Tensor& g) {
             return std::vector<Tensor>{kernels::global_avg_pool_backward(g, s.x_shape)};
           }),
           {x});
  }
  return y;
}

Tensor concat(const std::vector<Tensor>& xs, int axis) {
  Tensor y = kernels::concat(xs, axis);
  if (trace::active())
    trace_op(trace::OpKind::concat, "concat", xs, y,
             [&](trace::Op& o) { o.axis = axis < 0 ? axis + xs[0].dim() : axis; });
  if (any_requires_grad(xs)) {
    struct S {
      int axis;
      std::vector<std::int64_t> sizes;
    };
    const int nd = xs[0].dim();
    const int ax = axis < 0 ? axis + nd : axis;
    std::vector<std::int64_t> sizes;
    for (const Tensor& t : xs) sizes.push_back(t.size(ax));
    record(y, make_node("concat", S{ax, sizes}, [](Node&, S& s, const Tensor& g) {
             return kernels::split(g, s.axis, s.sizes);
           }),
           xs);
  }
  return y;
}

// ---- linear, dropout ------------------------------------------------------------------------------------

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  Tensor y = kernels::linear_forward(x, w, bias);
  if (trace::active()) trace_op(trace::OpKind::linear, "linear", {x, w, bias}, y);
  if (any_requires_grad({x, w, bias})) {
    struct S {
      Tensor x, w;
      DType bias_dtype;
    };
    record(y, make_node("linear", S{det(x), det(w), bias.defined() ? bias.dtype() : DType::f32},
                        [](Node& n, S& s, const Tensor& g) {
                          std::vector<Tensor> out(3);
                          if (n.needs_input_grad(0))
                            out[0] = kernels::matmul(g, false, s.w.dtype() == g.dtype() ? s.w : to_dtype(s.w, g.dtype()), false);
                          if (n.needs_input_grad(1)) {
                            Tensor dw = kernels::matmul(g, true, s.x.dtype() == g.dtype() ? s.x : to_dtype(s.x, g.dtype()), false);
                            out[1] = dw.dtype() == s.w.dtype() ? dw : to_dtype(dw, s.w.dtype());
                          }
                          if (n.needs_input_grad(2)) out[2] = to_dtype(kernels::sum(g, {0}), s.bias_dtype);
                          return out;
                        }),
           {x, w, bias});
  }
  return y;
}

Tensor dropout(const Tensor& x, float p, bool training, std::uint64_t seed, std::uint64_t stream) {
  if (!training || p == 0.f) return x;
  if (tls_shard && tls_shard->total_rows > x.size(0) && x.size(0) == tls_shard->rows) {
    // One process's rows of a data-parallel batch: the mask of the whole batch, these rows of it. Dropout's
    // output is x times the mask, so the mask is what dropout makes of ones (forward and backward alike).
    const BatchShard& sh = *tls_shard;
    std::vector<std::int64_t> dims(x.shape().begin(), x.shape().end());
    dims[0] = sh.total_rows;
    const Tensor mask = kernels::dropout_forward(ones(Shape(dims), x.dtype(), x.device()), p, seed, stream)
                            .slice0(sh.row0, sh.row0 + sh.rows)
                            .clone();
    return F::mul(x, mask);
  }
  Tensor y = kernels::dropout_forward(x, p, seed, stream);
  if (trace::active()) trace_op(trace::OpKind::dropout, "dropout", {x}, y, [&](trace::Op& o) { o.alpha = p; });
  if (any_requires_grad({x})) {
    struct S {
      float p;
      std::uint64_t seed, stream;
    };
    record(y, make_node("dropout", S{p, seed, stream}, [](Node&, S& s, const Tensor& g) {
             return std::vector<Tensor>{kernels::dropout_backward(g, s.p, s.seed, s.stream)};
           }),
           {x});
  }
  return y;
}

// ---- losses -----------------------------------------------------------------------------------------------

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, const Tensor& class_weights, float label_smoothing) {
  kernels::CrossEntropyState st;
  Tensor loss = kernels::softmax_cross_entropy_forward(logits, labels, class_weights, label_smoothing, st);
  if (trace::active()) trace_op(trace::OpKind::other, "cross_entropy", {logits, labels}, loss);
  if (any_requires_grad({logits})) {
    struct S {
      Tensor labels, weights;
      float smoothing;
      kernels::CrossEntropyState st;
      DType dtype;
    };
    record(loss, make_node("cross_entropy", S{labels, class_weights, label_smoothing, st, logits.dtype()},
                           [](Node&, S& s, const Tensor& g) {
                             return std::vector<Tensor>{kernels::softmax_cross_entropy_backward(
                                 g.reshape({1}), s.labels, s.weights, s.smoothing, s.st, s.dtype)};
                           }),
           {logits});
  }
  return loss;
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets, const Tensor& weight) {
  Tensor loss = kernels::bce_with_logits_forward(logits, targets, weight);
  if (trace::active()) trace_op(trace::OpKind::other, "binary_cross_entropy_with_logits", {logits, targets}, loss);
  if (any_requires_grad({logits})) {
    struct S {
      Tensor logits, targets, weight;
    };
    record(loss, make_node("binary_cross_entropy_with_logits", S{logits.detach(), det(targets), det(weight)},
                           [](Node&, S& s, const Tensor& g) {
                             return std::vector<Tensor>{
                                 kernels::bce_with_logits_backward(g.reshape({1}), s.logits, s.targets, s.weight)};
                           }),
           {logits});
  }
  return loss;
}

Tensor binary_cross_entropy(const Tensor& probs, const Tensor& targets) {
  Tensor loss = kernels::bce_forward(probs, targets);
  if (trace::active()) trace_op(trace::OpKind::other, "binary_cross_entropy", {probs, targets}, loss);
  if (any_requires_grad({probs})) {
    struct S {
      Tensor probs, targets;
    };
    record(loss, make_node("binary_cross_entropy", S{probs.detach(), det(targets)}, [](Node&, S& s, const Tensor& g) {
             return std::vector<Tensor>{kernels::bce_backward(g.reshape({1}), s.probs, s.targets)};
           }),
           {probs});
  }
  return loss;
}

// ---- reductions, shapes, casts ---------------------------------------------------------------------------------

namespace {
Tensor reduce_all(const Tensor& x, bool mean) {
  Tensor y = mean ? kernels::mean(x) : kernels::sum(x);
  if (trace::active()) trace_op(trace::OpKind::other, mean ? "mean" : "sum", {x}, y);
  if (any_requires_grad({x})) {
    struct S {
      Shape shape;
      DType dtype;
      float scale;
    };
    const float scale = mean ? 1.f / static_cast<float>(std::max<std::int64_t>(x.numel(), 1)) : 1.f;
    record(y, make_node(mean ? "mean" : "sum", S{x.shape(), x.dtype(), scale}, [](Node&, S& s, const Tensor& g) {
             return std::vector<Tensor>{kernels::broadcast_scalar(g, s.scale, s.shape, s.dtype)};
           }),
           {x});
  }
  return y;
}
}  // namespace

Tensor sum(const Tensor& x) { return reduce_all(x, false); }
Tensor mean(const Tensor& x) { return reduce_all(x, true); }

Tensor reshape(const Tensor& x, const std::vector<std::int64_t>& shape) {
  Tensor y = x.reshape(shape);
  if (trace::active()) trace_op(trace::OpKind::reshape, "reshape", {x}, y, [&](trace::Op& o) { o.shape = shape; });
  if (any_requires_grad({x})) {
    struct S {
      Shape shape;
    };
    record(y, make_node("reshape", S{x.shape()}, [](Node&, S& s, const Tensor& g) {
             return std::vector<Tensor>{g.view(s.shape)};
           }),
           {x});
  }
  return y;
}

Tensor cast(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor y = to_dtype(x, dtype);
  if (trace::active()) trace_op(trace::OpKind::cast, "cast", {x}, y);
  if (any_requires_grad({x})) {
    struct S {
      DType from;
    };
    record(y, make_node("cast", S{x.dtype()}, [](Node&, S& s, const Tensor& g) {
             return std::vector<Tensor>{to_dtype(g, s.from)};
           }),
           {x});
  }
  return y;
}

Tensor softmax(const Tensor& logits) {
  Tensor p = kernels::softmax(logits);
  if (trace::active()) trace_op(trace::OpKind::softmax, "softmax", {logits}, p);
  if (any_requires_grad({logits})) record_non_differentiable(p, "softmax", {logits});
  return p;
}

}  // namespace livernet::F
