// Data-parallel training (dist/data_parallel.h), run by ctest as `mpirun -np 2 test_data_parallel` (each
// process one thread). Every process computes the one-process reference itself, on the whole batch, and compares
// what the job gives it:
//  - the gradients summed over the processes equal the gradient of the whole batch (batch norm in training mode,
//    synchronised; or in eval mode; dropout on), within float32 rounding;
//  - several optimizer steps of the job equal several steps of one process on the whole batch;
//  - small buckets (many all-reduces started during the pass) give the same bits as one bucket after the pass;
//  - the autograd hook reports every parameter once, after its last gradient.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <vector>

#include "autograd/autograd.h"
#include "dist/comm.h"
#include "dist/data_parallel.h"
#include "kernels/tensor_ops.h"
#include "layers/functional.h"
#include "layers/init.h"
#include "models/inception_v3.h"
#include "optim/optimizer.h"
#include "test_util.h"

namespace livernet {
namespace {

// A small network with what the paper model has between its weights: convolutions, batch norms with fused
// ReLU (running statistics updated), global pooling, dropout and a linear head.
struct Net {
  Tensor w1, g1, b1, rm1, rv1, w2, g2, b2, rm2, rv2, fw, fb;
  explicit Net(std::uint64_t seed) {
    auto param = [&](Shape s, std::uint64_t stream, float sd) {
      Tensor t = randn(s, seed, stream, 0.f, sd);
      t.requires_grad_(true);
      return t;
    };
    w1 = param({8, 3, 3, 1}, 1, 0.5f);
    g1 = param({8}, 2, 0.1f);
    g1 = kernels::add(g1.detach(), ones({8}));
    g1.requires_grad_(true);
    b1 = param({8}, 3, 0.1f);
    w2 = param({6, 3, 3, 8}, 4, 0.2f);
    g2 = param({6}, 5, 0.1f);
    g2 = kernels::add(g2.detach(), ones({6}));
    g2.requires_grad_(true);
    b2 = param({6}, 6, 0.1f);
    fw = param({3, 6}, 7, 0.5f);
    fb = param({3}, 8, 0.1f);
    rm1 = zeros({8});
    rv1 = ones({8});
    rm2 = zeros({6});
    rv2 = ones({6});
  }
  Tensor forward(const Tensor& x, bool train_bn, std::uint64_t step) {
    Tensor h = F::conv2d(x, w1, Tensor(), kernels::Conv2dParams::make(1, 1, 1));
    h = F::batch_norm(h, g1, b1, rm1, rv1, train_bn, 0.1f, 1e-3f, true);
    h = F::conv2d(h, w2, Tensor(), kernels::Conv2dParams::make(2, 1, 1));
    h = F::batch_norm(h, g2, b2, rm2, rv2, train_bn, 0.1f, 1e-3f, true);
    h = F::global_avg_pool(h);
    h = F::dropout(h, 0.3f, true, 99, step);
    return F::linear(h, fw, fb);
  }
  std::vector<NamedTensor> params() {
    return {{"w1", &w1}, {"g1", &g1}, {"b1", &b1}, {"w2", &w2}, {"g2", &g2}, {"b2", &b2}, {"fw", &fw}, {"fb", &fb}};
  }
  std::vector<Tensor> buffers() { return {rm1, rv1, rm2, rv2}; }
};

constexpr std::int64_t kBatch = 6;  // the whole job's batch: 3 rows per process with two

Tensor images(std::uint64_t step) { return randn({kBatch, 10, 10, 1}, 1234, step, 0.3f, 1.f); }
Tensor labels(std::uint64_t step) {
  std::vector<std::int32_t> y;
  for (std::int64_t i = 0; i < kBatch; ++i) y.push_back(static_cast<std::int32_t>((i * 7 + step) % 3));
  return Tensor::from_vector(y, Shape{kBatch});
}
const Tensor& class_weights() {
  static const Tensor w = Tensor::from_vector(std::vector<float>{1.f, 2.f, 0.5f}, Shape{3});
  return w;
}

// The reference: one process, the whole batch.
Tensor whole_batch_loss(Net& net, bool train_bn, std::uint64_t step) {
  return F::cross_entropy(net.forward(images(step), train_bn, step), labels(step), class_weights(), 0.1f);
}

// This process's share, its mean loss weighted by its share of the batch's class-weight normaliser.
Tensor share_loss(Net& net, dist::DataParallel& dp, bool train_bn, std::uint64_t step) {
  const std::int64_t lo = kBatch * dp.rank() / dp.size(), hi = kBatch * (dp.rank() + 1) / dp.size();
  const std::vector<std::int32_t> y = labels(step).to_vector<std::int32_t>();
  const std::vector<float> w = class_weights().to_vector<float>();
  double mine = 0, all = 0;
  for (std::int64_t i = 0; i < kBatch; ++i) {
    all += w[static_cast<std::size_t>(y[static_cast<std::size_t>(i)])];
    if (i >= lo && i < hi) mine += w[static_cast<std::size_t>(y[static_cast<std::size_t>(i)])];
  }
  const Tensor loss = F::cross_entropy(net.forward(images(step).slice0(lo, hi), train_bn, step),
                                       labels(step).slice0(lo, hi), class_weights(), 0.1f);
  return F::scale(loss, static_cast<float>(mine / all));
}

// max |a - b| / max(max |b|, tiny)
double rel_diff(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  EXPECT_EQ(x.size(), y.size());
  double d = 0, m = 1e-12;
  for (std::size_t i = 0; i < x.size(); ++i) {
    d = std::max(d, std::fabs(static_cast<double>(x[i]) - y[i]));
    m = std::max(m, std::fabs(static_cast<double>(y[i])));
  }
  return d / m;
}

bool two_or_more() { return dist::world().size() >= 2; }
#define NEED_A_JOB()  \
  if (!two_or_more()) \
  GTEST_SKIP() << "needs several processes: run as mpirun -np 2 test_data_parallel (ctest: data_parallel_mpi)"

void check_gradients(bool train_bn) {
  Net ref(5), net(5);
  backward(whole_batch_loss(ref, train_bn, 0));
  dist::DataParallel dp(dist::world(), net.params());
  {
    const std::int64_t lo = kBatch * dp.rank() / dp.size(), hi = kBatch * (dp.rank() + 1) / dp.size();
    dist::ShardScope shard(dp, lo, hi - lo, kBatch, true);
    dp.backward(share_loss(net, dp, train_bn, 0));
  }
  const auto a = net.params(), b = ref.params();
  for (std::size_t i = 0; i < a.size(); ++i)
    EXPECT_LT(rel_diff(a[i].tensor->grad(), b[i].tensor->grad()), 2e-6) << a[i].name << " on process " << dp.rank();
  if (train_bn) {  // the running statistics were updated with the whole batch's
    for (std::size_t i = 0; i < net.buffers().size(); ++i)
      EXPECT_LT(rel_diff(net.buffers()[i], ref.buffers()[i]), 2e-6) << "buffer " << i;
  }
}

TEST(DataParallel, GradientsEqualOneProcessOnTheWholeBatchWithSynchronisedBatchNorm) {
  NEED_A_JOB();
  check_gradients(true);
}

TEST(DataParallel, GradientsEqualOneProcessOnTheWholeBatchWithBatchNormInEvalMode) {
  NEED_A_JOB();
  check_gradients(false);
}

TEST(DataParallel, SeveralStepsEqualOneProcessOnTheWholeBatch) {
  NEED_A_JOB();
  Net ref(11), net(11);
  std::vector<NamedTensor> rp = ref.params(), np = net.params();
  Adam ref_opt(rp, AdamOptions{.lr = 0.01f, .weight_decay = 0.01f, .decoupled = true});
  Adam opt(np, AdamOptions{.lr = 0.01f, .weight_decay = 0.01f, .decoupled = true});
  dist::DataParallel dp(dist::world(), np);
  for (std::uint64_t step = 0; step < 5; ++step) {
    ref_opt.zero_grad();
    backward(whole_batch_loss(ref, true, step));
    ref_opt.step();
    opt.zero_grad();
    const std::int64_t lo = kBatch * dp.rank() / dp.size(), hi = kBatch * (dp.rank() + 1) / dp.size();
    dist::ShardScope shard(dp, lo, hi - lo, kBatch, true);
    dp.backward(share_loss(net, dp, true, step));
    opt.step();
  }
  for (std::size_t i = 0; i < np.size(); ++i)
    EXPECT_LT(rel_diff(*np[i].tensor, *rp[i].tensor), 1e-5) << np[i].name << " after 5 steps";
  for (std::size_t i = 0; i < net.buffers().size(); ++i)
    EXPECT_LT(rel_diff(net.buffers()[i], ref.buffers()[i]), 1e-5) << "buffer " << i;
  EXPECT_EQ(dp.stats().steps, 5);
}

TEST(DataParallel, SmallBucketsDuringThePassGiveTheBitsOfOneBucketAfterIt) {
  NEED_A_JOB();
  std::vector<std::vector<float>> got[2];
  const dist::DataParallelOptions options[2] = {{.bucket_bytes = 256, .overlap = true},
                                                {.bucket_bytes = std::size_t{1} << 30, .overlap = false}};
  std::int64_t buckets[2] = {0, 0}, in_pass[2] = {0, 0};
  for (int v = 0; v < 2; ++v) {
    Net net(3);
    dist::DataParallel dp(dist::world(), net.params(), options[v]);
    const std::int64_t lo = kBatch * dp.rank() / dp.size(), hi = kBatch * (dp.rank() + 1) / dp.size();
    dist::ShardScope shard(dp, lo, hi - lo, kBatch, true);
    dp.backward(share_loss(net, dp, true, 0));
    for (const auto& p : net.params()) got[v].push_back(p.tensor->grad().to_vector<float>());
    buckets[v] = dp.stats().buckets;
    in_pass[v] = dp.stats().started_in_pass;
  }
  EXPECT_EQ(got[0], got[1]);
  EXPECT_EQ(buckets[0], 4);  // 256 bytes: [fb fw b2 g2] [w2] [b1 g1] [w1]
  EXPECT_EQ(in_pass[0], 4);  // each started by the hook as its last gradient arrived, inside the pass
  EXPECT_EQ(buckets[1], 1);
  EXPECT_EQ(in_pass[1], 0);
}

TEST(DataParallel, BroadcastMakesEveryProcessHoldProcessZerosTensors) {
  NEED_A_JOB();
  Net net(static_cast<std::uint64_t>(100 + dist::world().rank()));  // different weights on each process
  Net zero(100);
  dist::DataParallel dp(dist::world(), net.params());
  std::vector<Tensor> all;
  for (const auto& p : net.params()) all.push_back(*p.tensor);
  dp.broadcast(all);
  for (std::size_t i = 0; i < all.size(); ++i)
    EXPECT_EQ(all[i].to_vector<float>(), zero.params()[i].tensor->to_vector<float>());
}

TEST(DataParallel, AnotherModelOnAnotherProcessIsRefused) {
  NEED_A_JOB();
  Net net(1);
  std::vector<NamedTensor> p = net.params();
  if (dist::world().rank() == 1) p.pop_back();
  try {
    dist::DataParallel dp(dist::world(), p);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("process 1 has another model than process 0"), std::string::npos) << e.what();
  }
}

// Synchronised batch norm's arithmetic (two-pass statistics, then the normalisation with constant statistics
// plus the per-channel correction of its gradient) on one process, where the sums are its own: the same loss
// and gradients as the batch-norm kernel, on the paper model (94 batch norms, maps down to 1x1), within float32
// rounding.
TEST(DataParallel, SynchronisedBatchNormOnOneProcessEqualsTheKernelOnThePaperModel) {
  ModelConfig cfg;
  cfg.input_size = 75;
  cfg.head_hidden = {8};
  cfg.head_dropout = cfg.fc_dropout = 0.f;
  std::vector<std::vector<float>> grads[3];
  float losses[3];
  for (int v = 0; v < 3; ++v) {
    init::set_seed(7);
    LesionClassifier model(cfg);
    model.train();
    F::BatchShard shard{.row0 = 0, .rows = 4, .total_rows = 4, .all_reduce_sum = [](Tensor&) {}};
    if (v == 1) F::set_batch_shard(&shard);
    Tensor x = randn({4, 75, 75, 1}, 5, 0, 0.f, 1.f);
    if (v == 2) x = kernels::scale(x, 1.f + std::ldexp(1.f, -23));
    const Tensor y = Tensor::from_vector(std::vector<std::int32_t>{0, 1, 1, 0}, Shape{4});
    const Tensor loss = F::cross_entropy(model(x), y);
    backward(loss);
    F::set_batch_shard(nullptr);
    losses[v] = loss.to_vector<float>()[0];
    for (const auto& p : model.named_parameters()) grads[v].push_back(p.tensor->grad().to_vector<float>());
  }
  // Gradients as one vector: |difference| / |kernel's|, and the same for the kernel on an input changed by one
  // float32 rounding (x * (1 + 2^-24)): the model's own sensitivity, which bounds what any reordering of f32 sums
  // can be held to.
  const auto norm_diff = [&](int a, int b) {
    double d = 0, n = 0;
    for (std::size_t i = 0; i < grads[a].size(); ++i)
      for (std::size_t j = 0; j < grads[a][i].size(); ++j) {
        d += std::pow(static_cast<double>(grads[a][i][j]) - grads[b][i][j], 2);
        n += std::pow(static_cast<double>(grads[b][i][j]), 2);
      }
    return std::sqrt(d / n);
  };
  const double synced = norm_diff(1, 0), own = norm_diff(2, 0);
  std::printf(
      "synchronised batch norm on one process vs the kernel: loss %.9g vs %.9g (one rounding of the input: "
      "%.9g); gradients %.3g apart (one rounding of the input: %.3g)\n",
      losses[1], losses[0], losses[2], synced, own);
  EXPECT_LE(std::fabs(losses[1] - losses[0]),
            4 * std::max(static_cast<double>(std::fabs(losses[2] - losses[0])), 1e-7));
  EXPECT_LE(synced, 4 * std::max(own, 1e-6));
}

// The CUDA path on one GPU (a machine lent with one card): NCCL (or MPI through host memory without NCCL) with a
// communicator of one process, whose sums are copies, so every bit must come back as one process computed it:
// buckets filled on the device during the pass, the all-reduce on NCCL's stream after CUDA events, the
// synchronised batch norm's sums on the same stream; the gradients, the loss and the running statistics equal
// plain training's bit for bit, for several Adam steps.
TEST(DataParallel, OneProcessOnTheGpuThroughTheBackendGivesPlainTrainingsBits) {
  LN_REQUIRE_CUDA();
  if (dist::world().size() > 1) GTEST_SKIP() << "one process per GPU: run without mpirun";
  // plain: no DataParallel; buckets: through the backend (same bits); synced: and synchronised batch norm (its
  // own arithmetic: within float32 rounding).
  Net plain(21), buckets(21), synced(21);
  Net* nets[3] = {&plain, &buckets, &synced};
  for (Net* n : nets) {
    for (auto& p : n->params()) {
      *p.tensor = p.tensor->detach().to(Device::cuda());
      p.tensor->requires_grad_(true);
    }
    for (Tensor* b : {&n->rm1, &n->rv1, &n->rm2, &n->rv2}) *b = b->to(Device::cuda());
  }
  std::vector<NamedTensor> params[3] = {plain.params(), buckets.params(), synced.params()};
  std::vector<std::unique_ptr<Adam>> opts;
  for (auto& p : params) opts.push_back(std::make_unique<Adam>(p, AdamOptions{.lr = 0.01f}));
  const dist::DataParallelOptions o{.bucket_bytes = 512, .overlap = true, .even_alone = true};
  dist::DataParallel dp_buckets(dist::world(), params[1], o), dp_synced(dist::world(), params[2], o);
  std::printf("backend: %s\n", dp_buckets.backend().c_str());
  const Tensor w = class_weights().to(Device::cuda());
  for (std::uint64_t step = 0; step < 3; ++step) {
    const Tensor x = images(step).to(Device::cuda()), y = labels(step).to(Device::cuda());
    std::vector<float> loss[3];
    for (int v = 0; v < 3; ++v) {
      opts[static_cast<std::size_t>(v)]->zero_grad();
      dist::DataParallel* dp = v == 1 ? &dp_buckets : v == 2 ? &dp_synced : nullptr;
      std::optional<dist::ShardScope> shard;
      if (dp) shard.emplace(*dp, 0, kBatch, kBatch, v == 2);
      const Tensor l = F::cross_entropy(nets[v]->forward(x, true, step), y, w, 0.1f);
      if (dp)
        dp->backward(l);
      else
        backward(l);
      opts[static_cast<std::size_t>(v)]->step();
      loss[v] = l.to_vector<float>();
    }
    EXPECT_EQ(loss[1], loss[0]) << "step " << step;
    EXPECT_NEAR(loss[2][0], loss[0][0], 1e-5 * std::fabs(loss[0][0])) << "step " << step;
  }
  for (std::size_t i = 0; i < params[0].size(); ++i) {
    EXPECT_EQ(params[1][i].tensor->to_vector<float>(), params[0][i].tensor->to_vector<float>()) << params[0][i].name;
    EXPECT_LT(rel_diff(*params[2][i].tensor, *params[0][i].tensor), 1e-5) << params[0][i].name;
  }
  for (int v = 1; v < 3; ++v) {
    const dist::DataParallel& dp = v == 1 ? dp_buckets : dp_synced;
    EXPECT_EQ(dp.stats().steps, 3);
    // Buckets of 512 bytes, [fb fw b2 g2] [w2] [b1 g1 w1], each started inside the pass (NCCL; through host
    // memory without NCCL they wait for its end).
    EXPECT_EQ(dp.stats().started_in_pass, dp.backend().rfind("NCCL", 0) == 0 ? 3 * 3 : 0) << dp.backend();
  }
}

// The hook data-parallel training starts its all-reduces from (one process is enough).
TEST(DataParallel, TheAutogradHookReportsEachParameterOnceAfterItsLastGradient) {
  Tensor a = randn({4}, 1), b = randn({4}, 2), unused = randn({4}, 3);
  for (Tensor* t : {&a, &b, &unused}) t->requires_grad_(true);
  // a is used three times (its gradient arrives in three parts), b once, `unused` not at all.
  const Tensor y = F::sum(F::add(F::mul(a, b), F::add(F::scale(a, 2.f), F::mul(a, a))));
  std::vector<std::pair<const TensorImpl*, std::vector<float>>> seen;
  backward(y, Tensor(), false,
           [&](TensorImpl& leaf) { seen.emplace_back(&leaf, Tensor(leaf.grad).to_vector<float>()); });
  ASSERT_EQ(seen.size(), 2u);
  for (const auto& [leaf, g] : seen) {
    const Tensor& t = leaf == a.impl() ? a : b;
    EXPECT_TRUE(leaf == a.impl() || leaf == b.impl());
    EXPECT_EQ(g, t.grad().to_vector<float>()) << "reported before its last gradient";
  }
  EXPECT_FALSE(unused.grad().defined());
}

}  // namespace
}  // namespace livernet
