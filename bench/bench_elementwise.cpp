// Element-wise and reduction kernels: bytes moved per second (GB/s in Google Benchmark's
// bytes_per_second column). Arguments: {device (0 = cpu, 1 = cuda), elements, dtype (0 f32, 1 bf16)}.
#include "bench_common.h"
#include "kernels/elementwise.h"
#include "kernels/tensor_ops.h"

using namespace livernet;
using livernet::bench::device_arg;

namespace {

DType dtype_arg(std::int64_t v) { return v == 0 ? DType::f32 : DType::bf16; }

// Runs `step` once per iteration (the device synchronised after each) and reports `bytes` moved per step.
template <typename Step>
void timed(benchmark::State& state, Device d, std::int64_t bytes, Step&& step) {
  for (auto _ : state) {
    step();
    bench::sync(d);
  }
  state.SetBytesProcessed(state.iterations() * bytes);
}

// The device and dtype of this run's arguments; false (and the run skipped) when the device is missing.
bool setup(benchmark::State& state, Device& d, DType& dt) {
  d = device_arg(state.range(0));
  dt = dtype_arg(state.range(2));
  return !bench::skip_without_device(state, d);
}

void BM_Add(benchmark::State& state) {
  Device d;
  DType dt;
  if (!setup(state, d, dt)) return;
  const Tensor a = randn(Shape{state.range(1)}, 1, 0, 0, 1, dt, d);
  const Tensor b = randn(Shape{state.range(1)}, 2, 0, 0, 1, dt, d);
  Tensor out = Tensor::empty(a.shape(), dt, d);
  timed(state, d, 3 * static_cast<std::int64_t>(a.nbytes()), [&] { kernels::binary(kernels::BinaryOp::add, a, b, out); });
}

void BM_Relu(benchmark::State& state) {
  Device d;
  DType dt;
  if (!setup(state, d, dt)) return;
  const Tensor a = randn(Shape{state.range(1)}, 1, 0, 0, 1, dt, d);
  Tensor out = Tensor::empty(a.shape(), dt, d);
  timed(state, d, 2 * static_cast<std::int64_t>(a.nbytes()), [&] { kernels::unary(kernels::UnaryOp::relu, a, out); });
}

void BM_Axpby(benchmark::State& state) {
  Device d;
  DType dt;
  if (!setup(state, d, dt)) return;
  const Tensor x = randn(Shape{state.range(1)}, 1, 0, 0, 1, dt, d);
  Tensor y = randn(Shape{state.range(1)}, 2, 0, 0, 1, dt, d);
  timed(state, d, 3 * static_cast<std::int64_t>(x.nbytes()), [&] { kernels::axpby(0.5f, x, 0.9f, y); });
}

void BM_Cast(benchmark::State& state) {
  const Device d = device_arg(state.range(0));
  if (bench::skip_without_device(state, d)) return;
  const Tensor x = randn(Shape{state.range(1)}, 1, 0, 0, 1, DType::f32, d);
  Tensor y = Tensor::empty(x.shape(), DType::bf16, d);
  timed(state, d, static_cast<std::int64_t>(x.nbytes() + y.nbytes()), [&] { kernels::cast(x, y); });
}

void BM_SumAll(benchmark::State& state) {
  Device d;
  DType dt;
  if (!setup(state, d, dt)) return;
  const Tensor x = randn(Shape{state.range(1)}, 1, 0, 0, 1, dt, d);
  timed(state, d, static_cast<std::int64_t>(x.nbytes()), [&] { Tensor s = kernels::sum(x); });
}

// Per-channel sum over N, H, W of an NHWC activation (what batch-norm statistics read).
void BM_SumPerChannel(benchmark::State& state) {
  Device d;
  DType dt;
  if (!setup(state, d, dt)) return;
  const std::int64_t c = 192, hw = 35 * 35;
  const std::int64_t n = std::max<std::int64_t>(1, state.range(1) / (c * hw));
  const Tensor x = randn(Shape{n, 35, 35, c}, 1, 0, 0, 1, dt, d);
  timed(state, d, static_cast<std::int64_t>(x.nbytes()), [&] { Tensor s = kernels::sum(x, {0, 1, 2}); });
}

void Args(benchmark::internal::Benchmark* b) {
  for (std::int64_t dev : {0, 1})
    for (std::int64_t n : {1 << 20, 1 << 24})
      for (std::int64_t dt : {0, 1}) b->Args({dev, n, dt});
  b->ArgNames({"gpu", "n", "bf16"})->UseRealTime();
}

}  // namespace

BENCHMARK(BM_Add)->Apply(Args);
BENCHMARK(BM_Relu)->Apply(Args);
BENCHMARK(BM_Axpby)->Apply(Args);
BENCHMARK(BM_Cast)->Apply(Args);
BENCHMARK(BM_SumAll)->Apply(Args);
BENCHMARK(BM_SumPerChannel)->Apply(Args);
BENCHMARK_MAIN();
