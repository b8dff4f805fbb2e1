// The autograd engine on test-local ops (scale by a constant, add, a non-differentiable op): gradient
// routing, summing at shared inputs, seeds, errors, graph release and NoGradGuard.
#include <gtest/gtest.h>

#include "autograd/autograd.h"
#include "kernels/elementwise.h"
#include "kernels/tensor_ops.h"
#include "test_util.h"

using namespace livernet;

namespace {

class ScaleNode final : public Node {
 public:
  explicit ScaleNode(float a) : Node("test_scale"), a_(a) {}
  std::vector<Tensor> backward(const Tensor& g) override { return {kernels::scale(g, a_)}; }

 private:
  float a_;
};

class AddNode final : public Node {
 public:
  AddNode() : Node("test_add") {}
  std::vector<Tensor> backward(const Tensor& g) override { return {g, g}; }  // deliberately aliased
};

// y = x * x (saves x).
class SquareNode final : public Node {
 public:
  explicit SquareNode(Tensor x) : Node("test_square"), x_(std::move(x)) {}
  std::vector<Tensor> backward(const Tensor& g) override {
    return {kernels::mul(g, kernels::scale(x_, 2.f))};
  }
  void release_saved() override { x_ = Tensor(); }
  bool holds_saved() const { return x_.defined(); }

 private:
  Tensor x_;
};

Tensor scale(const Tensor& x, float a) {
  Tensor y = kernels::scale(x, a);
  record(y, std::make_shared<ScaleNode>(a), {x});
  return y;
}
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = kernels::add(a, b);
  record(y, std::make_shared<AddNode>(), {a, b});
  return y;
}
Tensor square(const Tensor& x) {
  Tensor y = kernels::mul(x, x);
  if (any_requires_grad({x})) record(y, std::make_shared<SquareNode>(x.detach()), {x});
  return y;
}
Tensor argmax_like(const Tensor& x) {
  Tensor y = x.clone();
  record_non_differentiable(y, "test_argmax", {x});
  return y;
}

}  // namespace

TEST(Autograd, ChainRuleAndLeafAccumulation) {
  Tensor x = Tensor::from_vector<float>({1.f, -2.f, 3.f}, Shape{3}).requires_grad_();
  Tensor y = kernels::sum(square(scale(x, 3.f)));  // raw sum: not recorded
  EXPECT_FALSE(y.requires_grad());
  Tensor z = square(scale(x, 3.f));                // z_i = 9 x_i^2
  backward(z, ones(Shape{3}));
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{18.f, -36.f, 54.f}));
  // A second graph accumulates into the same .grad.
  backward(scale(x, 2.f), ones(Shape{3}));
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{20.f, -34.f, 56.f}));
}

TEST(Autograd, TensorUsedTwiceGetsTheSumOfBothGradients) {
  Tensor x = Tensor::from_vector<float>({2.f}, Shape{1}).requires_grad_();
  Tensor h = scale(x, 5.f);
  Tensor y = add(h, scale(h, 3.f));  // y = 5x + 15x: h feeds two paths, the add node aliases its gradient
  backward(y);
  EXPECT_FLOAT_EQ(x.grad().item(), 20.f);
  Tensor w = Tensor::from_vector<float>({1.f, 1.f}, Shape{2}).requires_grad_();
  backward(add(w, w), ones(Shape{2}));
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{2.f, 2.f}));
}

TEST(Autograd, NonScalarNeedsSeedAndErrorsNameTheOp) {
  Tensor x = ones(Shape{2, 2}).requires_grad_();
  Tensor y = square(x);
  try {
    backward(y);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("test_square"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("seed"), std::string::npos) << e.what();
  }
  Tensor n = scale(argmax_like(x), 2.f);
  try {
    backward(n, ones(Shape{2, 2}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'test_argmax', which is not differentiable"), std::string::npos) << e.what();
  }
  EXPECT_THROW(backward(ones(Shape{1})), Error) << "nothing requires grad";
  EXPECT_THROW(backward(y, ones(Shape{3})), Error) << "seed of the wrong shape";
}

TEST(Autograd, GraphIsFreedAfterBackwardUnlessRetained) {
  Tensor x = Tensor::from_vector<float>({1.f, 2.f}, Shape{2}).requires_grad_();
  Tensor y = square(x);
  auto node = std::static_pointer_cast<SquareNode>(y.grad_fn());
  std::weak_ptr<Node> weak = node;
  node.reset();
  backward(y, ones(Shape{2}), /*retain_graph=*/true);
  EXPECT_TRUE(std::static_pointer_cast<SquareNode>(y.grad_fn())->holds_saved());
  backward(y, ones(Shape{2}));
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{4.f, 8.f}));
  EXPECT_FALSE(std::static_pointer_cast<SquareNode>(y.grad_fn())->holds_saved()) << "saved tensors released";
  try {
    backward(y, ones(Shape{2}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("second time"), std::string::npos) << e.what();
  }
  y = Tensor();
  EXPECT_TRUE(weak.expired()) << "the last reference to the graph was the output";
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Tensor x = ones(Shape{3}).requires_grad_();
  {
    NoGradGuard guard;
    EXPECT_FALSE(grad_enabled());
    Tensor y = scale(x, 2.f);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_TRUE(scale(x, 2.f).requires_grad());
}

TEST(Autograd, LeafGradientsAccumulateInTheLeafDtype) {
  Tensor w = ones(Shape{4}).requires_grad_();  // f32 master weight
  Tensor w16 = to_dtype(w, DType::bf16);                       // raw cast: a new leaf, not connected
  EXPECT_FALSE(w16.requires_grad());
  EXPECT_THROW(zeros(Shape{2}, DType::i32).requires_grad_(), Error);
  // A bf16 gradient arriving at an f32 leaf is accumulated in f32.
  Tensor y = scale(w, 0.1f);
  backward(y, ones(Shape{4}));
  y = scale(w, 0.1f);
  backward(y, ones(Shape{4}));
  EXPECT_EQ(w.grad().dtype(), DType::f32);
  for (float g : w.grad().to_vector<float>()) EXPECT_FLOAT_EQ(g, 0.2f);
}

namespace {
// Returns a fresh gradient and remembers where it lives, or (keep = true) also keeps a handle to it, as a
// node that saved the tensor it hands on would.
class FreshGradNode final : public Node {
 public:
  explicit FreshGradNode(bool keep) : Node("test_fresh"), keep_(keep) {}
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor out = kernels::scale(g, 3.f);
    produced = out.data_ptr();
    if (keep_) kept = out;
    return {out};
  }
  const void* produced = nullptr;
  Tensor kept;

 private:
  bool keep_;
};
}  // namespace

TEST(Autograd, FreshLeafGradientIsKeptWithoutACopyButAliasedOnesAreCopied) {
  for (bool keep : {false, true}) {
    Tensor x = full(Shape{4}, 1.0);
    x.requires_grad_();
    Tensor y = kernels::scale(x, 3.f);
    auto node = std::make_shared<FreshGradNode>(keep);
    record(y, node, {x});
    backward(y, ones(Shape{4}));
    ASSERT_TRUE(x.grad().defined());
    EXPECT_EQ(x.grad().to_vector<float>(), std::vector<float>(4, 3.f));
    if (!keep) {
      EXPECT_EQ(x.grad().data_ptr(), node->produced) << "nothing else held the gradient: no copy";
    } else {
      EXPECT_NE(x.grad().data_ptr(), node->produced) << "the node kept a handle: the leaf owns a copy";
      // A second backward accumulates into the leaf's gradient, never into the node's tensor.
      Tensor y2 = kernels::scale(x, 3.f);
      record(y2, std::make_shared<FreshGradNode>(false), {x});
      backward(y2, ones(Shape{4}));
      EXPECT_EQ(x.grad().to_vector<float>(), std::vector<float>(4, 6.f));
      EXPECT_EQ(node->kept.to_vector<float>(), std::vector<float>(4, 3.f));
    }
  }
}

TEST(Autograd, AliasedGradientsToTwoLeavesAreIndependent) {
  // AddNode hands the same tensor to both inputs: each leaf must own separate memory.
  Tensor a = full(Shape{3}, 1.0), b = full(Shape{3}, 2.0);
  a.requires_grad_();
  b.requires_grad_();
  Tensor y = add(a, b);
  backward(y, full(Shape{3}, 5.0));
  EXPECT_FALSE(a.grad().shares_memory_with(b.grad()));
  Tensor z = add(a, a);  // and a tensor used twice through one node gets the sum, added in place safely
  backward(z, full(Shape{3}, 1.0));
  EXPECT_EQ(a.grad().to_vector<float>(), std::vector<float>(3, 7.f));
  EXPECT_EQ(b.grad().to_vector<float>(), std::vector<float>(3, 5.f));
}

namespace {
// Hands two fixed gradients to its two inputs, whatever the incoming one.
class SplitNode final : public Node {
 public:
  SplitNode(Tensor p, Tensor q) : Node("test_split"), p_(std::move(p)), q_(std::move(q)) {}
  std::vector<Tensor> backward(const Tensor&) override { return {p_, q_}; }

 private:
  Tensor p_, q_;
};
}  // namespace

TEST(Autograd, Bf16GradientSumIsTheF32SumRoundedOnce) {
  // Two bf16 gradients meeting at a bf16 input: one f32 addition, rounded to bf16 once (what the old
  // cast-add-cast sequence gave, now one in-place kernel).
  const std::vector<float> ga = {1.f, 1e-3f, -3.140625f, 255.f, 7.f}, gb = {0.00390625f, 1.f, 1e-2f, 1.f, -7.f};
  Tensor x = zeros(Shape{5}, DType::bf16);
  x.requires_grad_();
  Tensor h = scale(x, 1.f);  // a non-leaf bf16 tensor that two paths read
  Tensor a = scale(h, 1.f), b = scale(h, 1.f);
  Tensor root = zeros(Shape{5}, DType::bf16);
  record(root, std::make_shared<SplitNode>(Tensor::from_vector(std::vector<bf16>(ga.begin(), ga.end()), Shape{5}),
                                           Tensor::from_vector(std::vector<bf16>(gb.begin(), gb.end()), Shape{5})),
         {a, b});
  backward(root, ones(Shape{5}, DType::bf16));
  ASSERT_EQ(x.grad().dtype(), DType::bf16);
  const std::vector<float> got = x.grad().to_vector<float>();
  for (int i = 0; i < 5; ++i) {
    const float fa = static_cast<float>(bf16(ga[i])), fb = static_cast<float>(bf16(gb[i]));
    EXPECT_EQ(got[i], static_cast<float>(bf16(fa + fb))) << i;
  }
}
