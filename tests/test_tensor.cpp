// Tensor creation, views, copies, conversions, summaries and error messages.
#include <gtest/gtest.h>

#include "core/tensor.h"
#include "kernels/elementwise.h"
#include "kernels/tensor_ops.h"
#include "test_util.h"

using namespace livernet;

namespace {
// Runs fn, expects an Error whose message contains every fragment.
template <typename Fn>
void expect_error(Fn&& fn, std::initializer_list<const char*> fragments) {
  try {
    fn();
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const char* f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "message: " << msg << "\nmissing: " << f;
  }
}
}  // namespace

TEST(Tensor, CreationAndMetadata) {
  const Tensor t = zeros(Shape{2, 3, 4, 5});
  EXPECT_EQ(t.dim(), 4);
  EXPECT_EQ(t.numel(), 120);
  EXPECT_EQ(t.size(-1), 5);
  EXPECT_EQ(t.nbytes(), 480u);
  EXPECT_EQ(t.dtype(), DType::f32);
  EXPECT_TRUE(t.is_cpu());
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.data_ptr()) % 64, 0u) << "CPU memory is 64-byte aligned";
  for (float v : t.to_vector<float>()) ASSERT_EQ(v, 0.f);
  for (float v : ones(Shape{7}, DType::bf16).to_vector<float>()) ASSERT_EQ(v, 1.f);
  for (int v : full(Shape{3}, 7.9, DType::i32).to_vector<int>()) ASSERT_EQ(v, 7);
  EXPECT_EQ(arange(0, 5).to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4}));
  EXPECT_EQ(arange(1, 2, 0.25).to_vector<float>(), (std::vector<float>{1, 1.25, 1.5, 1.75}));
  EXPECT_EQ(arange(3, 0, -1, DType::i64).to_vector<std::int64_t>(), (std::vector<std::int64_t>{3, 2, 1}));
  EXPECT_EQ(zeros(Shape{0, 3}).numel(), 0);
  EXPECT_EQ(zeros(Shape{}).numel(), 1);
  EXPECT_FALSE(Tensor().defined());
}

TEST(Tensor, FromVectorAndItem) {
  const Tensor t = Tensor::from_vector<float>({1.5f, -2.f, 3.f, 4.f}, Shape{2, 2});
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1.5f, -2.f, 3.f, 4.f}));
  EXPECT_DOUBLE_EQ(t.slice0(1, 2).reshape({-1}).slice0(0, 1).item(), 3.0);
  expect_error([&] { (void)t.item(); }, {"item()", "[2, 2]"});
  expect_error([&] { (void)Tensor::from_vector<float>({1.f, 2.f}, Shape{3}); }, {"2 values", "[3]"});
  expect_error([&] { (void)t.data<std::int32_t>(); }, {"f32", "i32"});
}

TEST(Tensor, ConversionsRoundTrip) {
  const Tensor x = randn(Shape{5, 7}, 1);
  const Tensor h = to_dtype(x, DType::bf16);
  EXPECT_EQ(h.dtype(), DType::bf16);
  const auto xv = x.to_vector<float>();
  const auto hv = to_dtype(h, DType::f32).to_vector<float>();
  for (std::size_t i = 0; i < xv.size(); ++i) {
    EXPECT_EQ(hv[i], bf16_bits_to_float(float_to_bf16_bits(xv[i])));
  }
  const auto fv = to_dtype(to_dtype(x, DType::f16), DType::f32).to_vector<float>();
  for (std::size_t i = 0; i < xv.size(); ++i) EXPECT_EQ(fv[i], f16_bits_to_float(float_to_f16_bits(xv[i])));
  EXPECT_TRUE(to_dtype(x, DType::f32).is_same(x)) << "to() the same dtype returns the tensor itself";
  const auto iv = to_dtype(Tensor::from_vector<float>({-1.7f, 2.5f, 300.f}, Shape{3}), DType::u8).to_vector<int>();
  EXPECT_EQ(iv, (std::vector<int>{0, 2, 255}));
}

TEST(Tensor, ViewsShareStorage) {
  Tensor t = arange(0, 24).reshape({2, 3, 4});
  Tensor v = t.reshape({6, -1});
  EXPECT_EQ(v.shape(), (Shape{6, 4}));
  EXPECT_TRUE(v.shares_memory_with(t));
  Tensor row = t.slice0(1, 2);
  EXPECT_EQ(row.shape(), (Shape{1, 3, 4}));
  EXPECT_EQ(row.to_vector<float>()[0], 12.f);
  fill_(row, -1);
  EXPECT_EQ(t.to_vector<float>()[12], -1.f);
  EXPECT_EQ(t.to_vector<float>()[11], 11.f);
  EXPECT_FALSE(t.slice0(0, 1).shares_memory_with(t.slice0(1, 2)));
  Tensor c = t.clone();
  EXPECT_FALSE(c.shares_memory_with(t));
  expect_error([&] { (void)t.reshape({5, 5}); }, {"[2, 3, 4]", "[5, 5]"});
  expect_error([&] { (void)t.slice0(1, 3); }, {"slice0", "[2, 3, 4]"});
  expect_error([&] { (void)t.reshape({-1, -1}); }, {"-1"});
}

TEST(Tensor, CopyCastsAndChecksSize) {
  Tensor dst = zeros(Shape{2, 3}, DType::f16);
  copy_(dst, arange(0, 6));
  EXPECT_EQ(dst.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  expect_error([&] { copy_(dst, zeros(Shape{7})); }, {"copy_", "[7]", "[2, 3]"});
}

TEST(Tensor, SummaryNamesShapeDtypeDeviceAndStats) {
  const Tensor t = Tensor::from_vector<float>({1.f, -3.f, 8.f, NAN}, Shape{2, 2});
  const std::string s = t.summary();
  EXPECT_NE(s.find("Tensor[2, 2] f32 cpu"), std::string::npos) << s;
  EXPECT_NE(s.find("min=-3"), std::string::npos) << s;
  EXPECT_NE(s.find("max=8"), std::string::npos) << s;
  EXPECT_NE(s.find("mean=2"), std::string::npos) << s;
  EXPECT_NE(s.find("non-finite=1"), std::string::npos) << s;
  EXPECT_EQ(Tensor().summary(), "Tensor(undefined)");
}

TEST(Tensor, ShapeAndDtypeErrorsNameBothSides) {
  const Tensor a = zeros(Shape{2, 3});
  const Tensor b = zeros(Shape{3, 2});
  expect_error([&] { (void)kernels::add(a, b); }, {"add", "[2, 3]", "[3, 2]"});
  expect_error([&] { (void)kernels::add(a, to_dtype(a, DType::bf16)); }, {"add", "f32", "bf16"});
  expect_error([&] { (void)kernels::relu(zeros(Shape{2}, DType::i32)); }, {"relu", "i32"});
}

TEST(Tensor, DeviceParsingAndClearErrorWithoutGpu) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda:1"), Device::cuda(1));
  EXPECT_EQ(Device::parse("cuda").str(), "cuda:0");
  expect_error([] { (void)Device::parse("tpu"); }, {"tpu"});
  expect_error([] { (void)Device::parse("cuda:x"); }, {"cuda:x"});
  if (cuda_device_count() == 0) {
    expect_error([] { (void)zeros(Shape{2}, DType::f32, Device::cuda()); }, {"cuda:0", "--device cpu"});
    expect_error([] { (void)zeros(Shape{2}).to(Device::cuda()); }, {"cuda:0"});
  }
}

TEST(Tensor, TransfersToGpuAndBack) {
  LN_REQUIRE_CUDA();
  const Tensor x = randn(Shape{3, 5, 7}, 2);
  const Tensor g = x.to(Device::cuda());
  EXPECT_TRUE(g.is_cuda());
  EXPECT_EQ(g.to(Device::cpu()).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(to_dtype(g, DType::bf16).to(Device::cpu()).to_vector<float>(), to_dtype(x, DType::bf16).to_vector<float>());
  Tensor h = zeros(Shape{3, 5, 7}, DType::f16);
  copy_(h, g);
  EXPECT_EQ(h.to_vector<float>(), to_dtype(x, DType::f16).to_vector<float>());
  EXPECT_NE(g.summary().find("cuda:0"), std::string::npos);
}
