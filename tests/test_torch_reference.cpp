// livernet's ops against PyTorch (Debian's python3-torch as a test-only oracle): tests/torch_reference.py
// writes inputs, outputs and autograd gradients to HDF5; here the same computations run through
// livernet's autograd and must agree to 1e-5 (relative to each tensor's largest value), in f32.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/hdf5.h"
#include "layers/functional.h"
#include "test_util.h"

using namespace livernet;
using namespace livernet::testing;

namespace {

const std::string& data_path() {
  static const std::string p = std::string(LIVERNET_TEST_DATA_DIR) + "/torch_reference.h5";
  return p;
}

#define LN_REQUIRE_TORCH_DATA() LN_REQUIRE_REFERENCE_DATA(data_path(), data_path() + ".skip", "no PyTorch reference data at " + data_path())

constexpr double kTol = 1e-5;

void expect_near(const Tensor& got, const Tensor& want, const std::string& what, double tol = kTol) {
  ASSERT_EQ(got.numel(), want.numel()) << what << ": " << got.shape().str() << " vs " << want.shape().str();
  const double err = max_rel_error(values(got), values(want));
  EXPECT_LE(err, tol) << what << ": max relative error " << err;
}

class TorchReference : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::filesystem::exists(data_path())) file_ = std::make_unique<io::H5File>(io::H5File::open(data_path()));
  }
  Tensor get(const std::string& name, bool grad = false) {
    Tensor t = file_->read(name, DType::f32);
    if (grad) t.requires_grad_();
    return t;
  }
  std::unique_ptr<io::H5File> file_;
};

}  // namespace

TEST_F(TorchReference, Conv2d) {
  LN_REQUIRE_TORCH_DATA();
  for (const std::string c : {"conv3x3_s2", "conv1x7", "conv7x1_bias", "conv5x5"}) {
    Tensor x = get(c + "/x", true), w = get(c + "/w", true);
    const bool has_bias = file_->exists(c + "/b");
    Tensor b = has_bias ? get(c + "/b", true) : Tensor();
    const auto stride = file_->read(c + "/stride", DType::i64).to_vector<std::int64_t>();
    const auto pad = file_->read(c + "/padding", DType::i64).to_vector<std::int64_t>();
    kernels::Conv2dParams p = kernels::Conv2dParams::make(static_cast<int>(stride[0]), static_cast<int>(pad[0]),
                                                          static_cast<int>(pad[1]));
    Tensor y = F::conv2d(x, w, b, p);
    expect_near(y, get(c + "/y"), c + " output");
    backward(y, get(c + "/seed").view(y.shape()));
    expect_near(x.grad(), get(c + "/dx"), c + " input gradient");
    expect_near(w.grad(), get(c + "/dw"), c + " weight gradient");
    if (has_bias) expect_near(b.grad(), get(c + "/db"), c + " bias gradient");
  }
}

TEST_F(TorchReference, BatchNorm) {
  LN_REQUIRE_TORCH_DATA();
  for (const bool training : {true, false}) {
    const std::string c = training ? "batch_norm_train" : "batch_norm_eval";
    Tensor x = get(c + "/x", true), g = get(c + "/gamma", true), b = get(c + "/beta", true);
    Tensor rm = get(c + "/running_mean_in"), rv = get(c + "/running_var_in");
    Tensor y = F::batch_norm(x, g, b, rm, rv, training, 0.1f, 1e-3f);
    expect_near(y, get(c + "/y"), c + " output");
    expect_near(rm, get(c + "/running_mean_out"), c + " running mean");
    expect_near(rv, get(c + "/running_var_out"), c + " running variance");
    backward(y, get(c + "/seed").view(y.shape()));
    expect_near(x.grad(), get(c + "/dx"), c + " input gradient");
    expect_near(g.grad(), get(c + "/dgamma"), c + " gamma gradient");
    expect_near(b.grad(), get(c + "/dbeta"), c + " beta gradient");
  }
}

TEST_F(TorchReference, Pools) {
  LN_REQUIRE_TORCH_DATA();
  struct Case {
    const char* name;
    kernels::Pool2dParams p;
    bool max;
  };
  for (const Case& k : {Case{"avg_pool_include_pad", kernels::Pool2dParams::make(3, 1, 1, true), false},
                        Case{"avg_pool_exclude_pad", kernels::Pool2dParams::make(3, 1, 1, false), false},
                        Case{"max_pool_3x3_s2", kernels::Pool2dParams::make(3, 2, 0), true}}) {
    const std::string c = k.name;
    Tensor x = get(c + "/x", true);
    Tensor y = k.max ? F::max_pool2d(x, k.p) : F::avg_pool2d(x, k.p);
    expect_near(y, get(c + "/y"), c + " output");
    backward(y, get(c + "/seed").view(y.shape()));
    expect_near(x.grad(), get(c + "/dx"), c + " input gradient");
  }
}

TEST_F(TorchReference, Linear) {
  LN_REQUIRE_TORCH_DATA();
  Tensor x = get("linear/x", true), w = get("linear/w", true), b = get("linear/b", true);
  Tensor y = F::linear(x, w, b);
  expect_near(y, get("linear/y"), "linear output");
  backward(y, get("linear/seed"));
  expect_near(x.grad(), get("linear/dx"), "linear input gradient");
  expect_near(w.grad(), get("linear/dw"), "linear weight gradient");
  expect_near(b.grad(), get("linear/db"), "linear bias gradient");
}

TEST_F(TorchReference, CrossEntropy) {
  LN_REQUIRE_TORCH_DATA();
  for (const std::string c : {"cross_entropy", "cross_entropy_weighted_smoothed"}) {
    Tensor z = get(c + "/logits", true);
    const Tensor labels = file_->read(c + "/labels", DType::i64);
    const Tensor w = file_->exists(c + "/weights") ? get(c + "/weights") : Tensor();
    const float smoothing = static_cast<float>(file_->read(c + "/smoothing").item());
    Tensor loss = F::cross_entropy(z, labels, w, smoothing);
    expect_near(loss, get(c + "/loss"), c + " loss");
    backward(loss);
    expect_near(z.grad(), get(c + "/dlogits"), c + " logits gradient");
  }
}
