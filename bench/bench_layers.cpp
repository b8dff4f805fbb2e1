// Layer benchmarks on InceptionV3's shapes at 299x299: every distinct convolution (forward, backward
// data, backward weights; GFLOP/s), BN+ReLU, pools and concat (GB/s).
// Arguments: {device (0 cpu, 1 cuda), shape index}; batch 4 on the CPU, 32 on the GPU.
#include <cstdio>

#include "bench_common.h"
#include "kernels/nn.h"
#include "kernels/tensor_ops.h"

using namespace livernet;
using livernet::bench::device_arg;

namespace {

struct ConvShape {
  int h, cin, cout, kh, kw, stride, ph, pw;
};

// The distinct convolutions of InceptionV3 at 299x299 (input size, channels, kernel, stride, padding).
const ConvShape kConvs[] = {
    {299, 3, 32, 3, 3, 2, 0, 0},    {149, 32, 32, 3, 3, 1, 0, 0},   {147, 32, 64, 3, 3, 1, 1, 1},
    {73, 64, 80, 1, 1, 1, 0, 0},    {73, 80, 192, 3, 3, 1, 0, 0},   {35, 192, 64, 1, 1, 1, 0, 0},
    {35, 192, 48, 1, 1, 1, 0, 0},   {35, 48, 64, 5, 5, 1, 2, 2},    {35, 64, 96, 3, 3, 1, 1, 1},
    {35, 96, 96, 3, 3, 1, 1, 1},    {35, 192, 32, 1, 1, 1, 0, 0},   {35, 256, 64, 1, 1, 1, 0, 0},
    {35, 256, 48, 1, 1, 1, 0, 0},   {35, 288, 64, 1, 1, 1, 0, 0},   {35, 288, 48, 1, 1, 1, 0, 0},
    {35, 288, 384, 3, 3, 2, 0, 0},  {35, 96, 96, 3, 3, 2, 0, 0},    {17, 768, 192, 1, 1, 1, 0, 0},
    {17, 768, 128, 1, 1, 1, 0, 0},  {17, 128, 128, 1, 7, 1, 0, 3},  {17, 128, 192, 7, 1, 1, 3, 0},
    {17, 128, 128, 7, 1, 1, 3, 0},  {17, 128, 192, 1, 7, 1, 0, 3},  {17, 768, 160, 1, 1, 1, 0, 0},
    {17, 160, 160, 1, 7, 1, 0, 3},  {17, 160, 192, 7, 1, 1, 3, 0},  {17, 160, 160, 7, 1, 1, 3, 0},
    {17, 160, 192, 1, 7, 1, 0, 3},  {17, 192, 192, 1, 7, 1, 0, 3},  {17, 192, 192, 7, 1, 1, 3, 0},
    {17, 192, 320, 3, 3, 2, 0, 0},  {17, 192, 192, 3, 3, 2, 0, 0},  {8, 1280, 320, 1, 1, 1, 0, 0},
    {8, 1280, 384, 1, 1, 1, 0, 0},  {8, 384, 384, 1, 3, 1, 0, 1},   {8, 384, 384, 3, 1, 1, 1, 0},
    {8, 1280, 448, 1, 1, 1, 0, 0},  {8, 448, 384, 3, 3, 1, 1, 1},   {8, 1280, 192, 1, 1, 1, 0, 0},
    {8, 2048, 320, 1, 1, 1, 0, 0},  {8, 2048, 384, 1, 1, 1, 0, 0},  {8, 2048, 448, 1, 1, 1, 0, 0},
    {8, 2048, 192, 1, 1, 1, 0, 0},
};
constexpr int kNumConvs = sizeof(kConvs) / sizeof(kConvs[0]);

std::int64_t batch_for(Device d) { return d.is_cuda() ? 32 : 4; }

enum class Dir { forward, backward_data, backward_weights };

void BM_Conv(benchmark::State& state, Dir dir) {
  const Device d = device_arg(state.range(0));
  if (bench::skip_without_device(state, d)) return;
  const ConvShape& s = kConvs[state.range(1)];
  const DType dt = d.is_cuda() ? DType::bf16 : DType::f32;
  const std::int64_t n = batch_for(d);
  const Tensor x = randn(Shape{n, s.h, s.h, s.cin}, 1, 0, 0, 1, dt, d);
  const Tensor w = randn(Shape{s.cout, s.kh, s.kw, s.cin}, 2, 0, 0, 0.1f, dt, d);
  const auto p = kernels::Conv2dParams::make(s.stride, s.ph, s.pw);
  const Tensor y = kernels::conv2d_forward(x, w, Tensor(), p);
  Tensor dw = Tensor::empty(w.shape(), dt, d);
  for (auto _ : state) {
    if (dir == Dir::forward) (void)kernels::conv2d_forward(x, w, Tensor(), p);
    else if (dir == Dir::backward_data) (void)kernels::conv2d_backward_data(y, w, x.shape(), p);
    else kernels::conv2d_backward_weights(y, x, p, dw, nullptr);
    bench::sync(d);
  }
  const double flops = 2.0 * static_cast<double>(y.numel()) * s.kh * s.kw * s.cin;
  state.counters["GFLOP"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  char label[96];
  std::snprintf(label, sizeof label, "%dx%d %d->%d %dx%d s%d", s.h, s.h, s.cin, s.cout, s.kh, s.kw, s.stride);
  state.SetLabel(label);
}

// The input of a layer benchmark: [batch, hw, hw, c] with hw and c from the arguments {device, hw, c},
// bf16 on a GPU and f32 on the CPU (each device's training dtype).
Tensor activation(const benchmark::State& state, Device d) {
  const int hw = static_cast<int>(state.range(1)), c = static_cast<int>(state.range(2));
  return randn(Shape{batch_for(d), hw, hw, c}, 1, 0, 0, 1, d.is_cuda() ? DType::bf16 : DType::f32, d);
}

void BM_BatchNormReLU(benchmark::State& state, bool backward) {
  const Device d = device_arg(state.range(0));
  if (bench::skip_without_device(state, d)) return;
  const Tensor x = activation(state, d);
  const int c = static_cast<int>(x.size(3));
  const Tensor g = ones(Shape{c}, DType::f32, d), b = zeros(Shape{c}, DType::f32, d);
  Tensor rm = zeros(Shape{c}, DType::f32, d), rv = ones(Shape{c}, DType::f32, d);
  kernels::BatchNormState st;
  const Tensor y = kernels::batch_norm_train(x, g, b, rm, rv, 0.1f, 1e-3f, true, st);
  for (auto _ : state) {
    if (backward) {
      Tensor dg, db;
      (void)kernels::batch_norm_backward(y, x, y, g, st, true, true, &dg, &db);
    } else {
      (void)kernels::batch_norm_train(x, g, b, rm, rv, 0.1f, 1e-3f, true, st);
    }
    bench::sync(d);
  }
  // forward reads x twice (statistics, then apply) and writes y; backward reads dy, x, y twice, writes dx
  const double bytes = static_cast<double>(x.nbytes()) * (backward ? 7 : 3);
  state.counters["GB"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Pool(benchmark::State& state, bool is_max) {
  const Device d = device_arg(state.range(0));
  if (bench::skip_without_device(state, d)) return;
  const Tensor x = activation(state, d);
  const auto p = is_max ? kernels::Pool2dParams::make(3, 2, 0) : kernels::Pool2dParams::make(3, 1, 1);
  Tensor idx;
  for (auto _ : state) {
    Tensor y = is_max ? kernels::max_pool2d_forward(x, p, idx) : kernels::avg_pool2d_forward(x, p);
    bench::sync(d);
  }
  state.counters["GB"] = benchmark::Counter(static_cast<double>(x.nbytes()) * 2e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_ConcatMixed(benchmark::State& state) {
  const Device d = device_arg(state.range(0));
  if (bench::skip_without_device(state, d)) return;
  const DType dt = d.is_cuda() ? DType::bf16 : DType::f32;
  const std::int64_t n = batch_for(d);
  // Mixed_6b's output: four 192-channel branches at 17x17.
  std::vector<Tensor> parts;
  for (int i = 0; i < 4; ++i) parts.push_back(randn(Shape{n, 17, 17, 192}, i, 0, 0, 1, dt, d));
  for (auto _ : state) {
    Tensor y = kernels::concat(parts, -1);
    bench::sync(d);
  }
  state.counters["GB"] = benchmark::Counter(static_cast<double>(parts[0].nbytes()) * 8e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void ConvArgs(benchmark::internal::Benchmark* b) {
  for (std::int64_t dev : {0, 1})
    for (int i = 0; i < kNumConvs; ++i) b->Args({dev, i});
  b->ArgNames({"gpu", "shape"})->UseRealTime()->Unit(benchmark::kMillisecond);
}

void ActArgs(benchmark::internal::Benchmark* b) {
  for (std::int64_t dev : {0, 1})
    for (auto [hw, c] : {std::pair{147, 64}, {71, 192}, {35, 288}, {17, 768}, {8, 2048}}) b->Args({dev, hw, c});
  b->ArgNames({"gpu", "hw", "c"})->UseRealTime();
}

}  // namespace

BENCHMARK_CAPTURE(BM_Conv, forward, Dir::forward)->Apply(ConvArgs);
BENCHMARK_CAPTURE(BM_Conv, backward_data, Dir::backward_data)->Apply(ConvArgs);
BENCHMARK_CAPTURE(BM_Conv, backward_weights, Dir::backward_weights)->Apply(ConvArgs);
BENCHMARK_CAPTURE(BM_BatchNormReLU, forward, false)->Apply(ActArgs);
BENCHMARK_CAPTURE(BM_BatchNormReLU, backward, true)->Apply(ActArgs);
BENCHMARK_CAPTURE(BM_Pool, max3x3s2, true)->Apply(ActArgs);
BENCHMARK_CAPTURE(BM_Pool, avg3x3s1, false)->Apply(ActArgs);
BENCHMARK(BM_ConcatMixed)->Arg(0)->Arg(1)->ArgName("gpu")->UseRealTime();
BENCHMARK_MAIN();
