// Layer benchmarks: the rows of the op-case table (tests/op_cases.h) that the tests check, made at
// InceptionV3's shapes at 299x299 (inception_layer_cases): every distinct convolution, BN+ReLU, the pools,
// global average pooling and a Mixed block's concatenation. Each row is timed
//  - forward: the raw op (the row's `run`);
//  - backward_data: the backward pass to the row's data inputs (conv: backward-data; BN: the fused
//    backward), through autograd with the graph kept, so no forward is timed;
//  - backward_params: the backward pass to its parameters alone (conv: backward-weights; BN: gamma, beta);
// on the CPU (batch 4, f32) and the GPU (batch 32, bf16, each device's training dtype). Rates: GFLOP/s
// where the row counts FLOPs, else GB/s of the elements read and written.
// Names: <mode>/<row>/gpu:<0|1>, e.g. --benchmark_filter='forward/conv.*/gpu:1'.
#include <string>

#include "autograd/autograd.h"
#include "bench_common.h"
#include "kernels/tensor_ops.h"
#include "op_cases.h"

using namespace livernet;
using livernet::testing::OpCase;

namespace {

enum class Mode { forward, backward_data, backward_params };

const char* mode_name(Mode m) {
  return m == Mode::forward ? "forward" : m == Mode::backward_data ? "backward_data" : "backward_params";
}

// Whether input i gets a gradient in a backward mode.
bool wants_grad(const OpCase& c, Mode m, std::size_t i) {
  if (!c.gets_grad(i)) return false;
  return m == Mode::backward_params ? c.is_param(i) : !c.is_param(i);
}

bool has_mode(const OpCase& c, Mode m) {
  if (m == Mode::forward) return true;
  if (!c.has_gradient()) return false;
  for (std::size_t i = 0; i < c.input_shapes.size(); ++i)
    if (wants_grad(c, m, i)) return true;
  return false;
}

void run_case(benchmark::State& state, const OpCase& c, Mode mode, Device d) {
  if (bench::skip_without_device(state, d)) return;
  const DType dt = d.is_cuda() ? DType::bf16 : DType::f32;
  std::vector<Tensor> in = testing::make_inputs(c, dt, d);
  if (mode == Mode::forward) {
    NoGradGuard no_tape;
    (void)c.run(in);  // once untimed: cuDNN's algorithm choice, the allocator's first blocks
    bench::sync(d);
    for (auto _ : state) {
      (void)c.run(in);
      bench::sync(d);
    }
  } else {
    for (std::size_t i = 0; i < in.size(); ++i)
      if (wants_grad(c, mode, i)) in[i].requires_grad_();
    const Tensor y = c.differentiable(in);
    const Tensor seed = to_dtype(randn(y.shape(), 99, 0).to(d), y.dtype());
    auto step = [&] {
      for (Tensor& t : in)
        if (t.requires_grad()) t.set_grad(Tensor());
      backward(y, seed, /*retain_graph=*/true);
    };
    step();
    bench::sync(d);
    for (auto _ : state) {
      step();
      bench::sync(d);
    }
  }
  if (c.flops > 0) {
    state.counters["GFLOP"] = benchmark::Counter(c.flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  } else {
    const double moved = mode == Mode::forward ? c.bytes_forward : c.bytes_backward;
    if (moved > 0)
      state.counters["GB"] = benchmark::Counter(moved * static_cast<double>(dtype_size(dt)) * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
  }
  state.SetLabel(c.label);
}

}  // namespace

int main(int argc, char** argv) {
  for (const Device d : {Device::cpu(), Device::cuda(0)}) {
    for (const OpCase& c : testing::inception_layer_cases(d.is_cuda() ? 32 : 4)) {
      for (const Mode m : {Mode::forward, Mode::backward_data, Mode::backward_params}) {
        if (!has_mode(c, m)) continue;
        const std::string name = std::string(mode_name(m)) + "/" + c.name + "/gpu:" + (d.is_cuda() ? "1" : "0");
        benchmark::RegisterBenchmark(name.c_str(), [c, m, d](benchmark::State& s) { run_case(s, c, m, d); })
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
