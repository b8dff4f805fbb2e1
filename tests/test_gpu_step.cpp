// A whole training step of the paper's model on the GPU: how often it waits for the device (issue 17:
// at most once per step; the engine's own part never), and that a step captured as a CUDA graph and
// replayed computes what the same steps run eagerly compute. Skipped without a CUDA device.
#include <gtest/gtest.h>

#include "autograd/autograd.h"
#include "core/graph.h"
#include "core/work_counters.h"
#include "kernels/nn.h"
#include "kernels/optim.h"
#include "kernels/tensor_ops.h"
#include "models/inception_v3.h"
#include "optim/optimizer.h"
#include "test_util.h"

using namespace livernet;

namespace {

struct StepRig {
  explicit StepRig(DType dtype, int batch = 4, int size = 75) {
    init::set_seed(3);
    ModelConfig cfg;
    cfg.head_dropout = 0.f;  // dropout seeds are host values, frozen in a captured graph (core/graph.h)
    model = std::make_unique<LesionClassifier>(cfg);
    model->to(Device::cuda());
    model->set_compute_dtype(dtype);
    model->train();
    x = randn(Shape{batch, size, size, 1}, 11, 0, 0.f, 1.f, DType::f32, Device::cuda());
    std::vector<std::int64_t> lab;
    for (int i = 0; i < batch; ++i) lab.push_back(i % 2);
    labels = Tensor::from_vector(lab, Shape{batch}, Device::cuda());
    for (auto& p : model->named_parameters()) params.push_back({p.name, p.tensor});
    opt = std::make_unique<SGD>(params, SgdOptions{.lr = 1e-2f, .momentum = 0.9f});
  }
  Tensor step() {
    opt->zero_grad();
    Tensor loss = F::cross_entropy((*model)(x), labels);
    backward(loss);
    opt->step();
    return loss;
  }
  std::vector<double> weights() {
    std::vector<double> all;
    for (auto& p : params) {
      const auto v = p.tensor->to_vector<double>();
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  }
  std::unique_ptr<LesionClassifier> model;
  Tensor x, labels;
  std::vector<NamedParam> params;
  std::unique_ptr<SGD> opt;
};

}  // namespace

TEST(GpuTrainingStep, QueuesTheWholeStepWithoutWaitingForTheDevice) {
  LN_REQUIRE_CUDA();
  StepRig s(DType::bf16);
  s.step();  // warm-up: cuDNN algorithm searches, workspace, allocator caches
  const DeviceWorkCounts c0 = device_work_counts();
  Tensor loss = s.step();
  const DeviceWorkCounts step = device_work_counts() - c0;
  std::printf("paper model, bf16, batch 4 at 75x75: %lld host syncs, %lld launches per training step\n",
              static_cast<long long>(step.host_syncs), static_cast<long long>(step.launches));
  EXPECT_EQ(step.host_syncs, 0) << "forward, loss, backward and the optimizer must not wait for the GPU";
  EXPECT_GT(step.launches, 100);
  // A training loop reads the loss and the gradients' finiteness once: exactly one wait.
  const DeviceWorkCounts c1 = device_work_counts();
  const double v = loss.item();
  EXPECT_EQ((device_work_counts() - c1).host_syncs, 1);
  EXPECT_TRUE(std::isfinite(v));
}

TEST(GpuTrainingStep, GraphReplaysComputeWhatEagerStepsCompute) {
  LN_REQUIRE_CUDA();
  // f32 with deterministic cuDNN algorithms: eager and replayed steps must agree to the bit.
  kernels::set_deterministic(true);
  StepRig eager(DType::f32), graphed(DType::f32);
  eager.step();
  graphed.step();  // the warm-up the capture needs (algorithms chosen outside the graph)
  ASSERT_EQ(eager.weights(), graphed.weights());
  Tensor captured_loss;
  const DeviceWorkCounts c0 = device_work_counts();
  auto graph = DeviceGraph::capture(Device::cuda(), [&] { captured_loss = graphed.step(); });
  EXPECT_EQ((device_work_counts() - c0).host_syncs, 0);
  // Capturing runs nothing: the weights are still those after one step.
  EXPECT_EQ(graphed.weights(), eager.weights());
  for (int i = 0; i < 3; ++i) {
    const double want = eager.step().item();
    graph->replay();
    EXPECT_EQ(captured_loss.item(), want) << "replay " << i;
  }
  EXPECT_EQ(graphed.weights(), eager.weights());
  kernels::set_deterministic(false);
}

TEST(GpuTrainingStep, CaptureRefusesAHostRead) {
  LN_REQUIRE_CUDA();
  StepRig s(DType::bf16);
  s.step();
  EXPECT_THROW(DeviceGraph::capture(Device::cuda(), [&] { (void)s.step().item(); }), Error);
  // The device and the allocator are usable afterwards.
  EXPECT_TRUE(std::isfinite(s.step().item()));
}
