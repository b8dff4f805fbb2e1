// tools/bench: images/s of the paper's model or plain InceptionV3, forward-only or a full training step
// (forward, loss, backward, SGD update), with per-block forward times, peak memory, host synchronisations
// and device launches per step and, on a GPU, the fraction of the measured matrix-multiply rate (MFU).
// --graph replays the step as one CUDA graph (core/graph.h). --kernel-trace hands the timed steps to a
// kernel tracer preloaded into the process (bench/cupti_trace: livernet_trace_begin / _end).
#include <dlfcn.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/allocator.h"
#include "autograd/autograd.h"
#include "core/graph.h"
#include "core/version.h"
#include "core/work_counters.h"
#include "kernels/nn.h"
#include "kernels/tensor_ops.h"
#include "models/inception_v3.h"
#include "optim/optimizer.h"
#include "tools/cli.h"

#if defined(LIVERNET_WITH_CUDA)
#include "core/cuda/cuda_context.h"
#endif

using namespace livernet;
using Clock = std::chrono::steady_clock;

namespace {

void sync(Device d) {
#if defined(LIVERNET_WITH_CUDA)
  if (d.is_cuda()) cuda::synchronize(d.index);
#else
  (void)d;
#endif
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The device's dense matrix-multiply rate in `dt` (TFLOP/s), measured with the engine's own GEMM.
double measure_matmul_tflops(Device d, DType dt) {
  const std::int64_t n = 8192;
  const Tensor a = randn(Shape{n, n}, 1, 0, 0, 1, dt, d), b = randn(Shape{n, n}, 2, 0, 0, 1, dt, d);
  Tensor c = Tensor::empty(Shape{n, n}, dt, d);
  for (int i = 0; i < 3; ++i) kernels::gemm(a, false, b, false, 1.f, 0.f, c);
  sync(d);
  const int iters = 10;
  const auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) kernels::gemm(a, false, b, false, 1.f, 0.f, c);
  sync(d);
  return 2.0 * n * n * n * iters / seconds_since(t0) / 1e12;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Benchmarks the model: images/s for forward or a full training step, per-block times, peak memory.",
               "bench");
  std::string model_name = "paper", device = "auto", dtype_name_arg = "auto", json_path;
  int classes = 2, batch = 8, size = 299, warmup = 2, iters = 5;
  bool train = false, per_block = true;
  app.add_option("--model", model_name, "paper (residual InceptionV3 + FC head) or inception_v3")
      ->check(CLI::IsMember({"paper", "inception_v3"}))->capture_default_str();
  app.add_option("--classes", classes, "output classes")->capture_default_str()->check(CLI::Range(2, 100000));
  app.add_option("--device", device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--batch", batch, "images per step")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--size", size, "input height and width (>= 75)")->capture_default_str()->check(CLI::Range(75, 4096));
  app.add_flag("--train", train, "time a full training step instead of a forward pass");
  app.add_option("--dtype", dtype_name_arg, "activation dtype: auto (bf16 on GPU, f32 on CPU), f32, bf16, f16")
      ->capture_default_str();
  app.add_option("--warmup", warmup, "untimed iterations")->capture_default_str()->check(CLI::Range(0, 1000));
  app.add_option("--iters", iters, "timed iterations")->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_flag("!--no-per-block", per_block, "skip the per-block forward timing");
  bool with_mfu = true;
  app.add_flag("!--no-mfu", with_mfu, "GPU: skip measuring the matrix-multiply rate (an 8192^3 GEMM) for the MFU");
  bool profile = false, graph = false, kernel_trace = false;
  app.add_flag("--profile", profile, "with --train: one more step with every backward op timed, summed per op");
  app.add_flag("--graph", graph, "GPU: capture one step as a CUDA graph after the warm-up and time its replays");
  app.add_flag("--kernel-trace", kernel_trace,
               "call livernet_trace_begin/end (an LD_PRELOADed tracer, bench/cupti_trace) around the timed steps");
  app.add_option("--json", json_path, "also write the results as JSON to this file");
  return tools::run(app, argc, argv, [&] {
    const Device dev = resolve_device(device);
    const DType dt = dtype_name_arg == "auto" ? (dev.is_cuda() ? DType::bf16 : DType::f32) : parse_dtype(dtype_name_arg);
    LN_CHECK(is_floating(dt), "--dtype must be f32, bf16 or f16");
    ModelConfig cfg;
    cfg.arch = model_name;
    cfg.num_classes = classes;
    cfg.flavour = model_name == "inception_v3" ? Flavour::torchvision : Flavour::keras;
    if (model_name == "inception_v3") cfg.residual = ResidualMode::none;
    init::set_seed(1);
    LesionClassifier model(cfg);
    model.to(dev);
    model.set_compute_dtype(dt);
    model.train(train);
    const Tensor x = randn(Shape{batch, size, size, 3}, 7, 0, 0, 1, DType::f32, dev);
    std::vector<std::int32_t> lab(static_cast<std::size_t>(batch));
    for (int i = 0; i < batch; ++i) lab[i] = i % classes;
    const Tensor labels = Tensor::from_vector(lab, Shape{batch}, dev);
    LN_CHECK(!graph || dev.is_cuda(), "--graph needs a CUDA device");
    // The same optimizer as PyTorch's side of bench/compare_pytorch_gpu.py: plain SGD, lr 1e-3.
    std::vector<NamedParam> named;
    for (auto& p : model.named_parameters()) named.push_back({p.name, p.tensor});
    SGD opt(named, SgdOptions{.lr = 1e-3f});

    auto step = [&] {
      if (train) {
        opt.zero_grad();
        Tensor loss = F::cross_entropy(model(x), labels);
        backward(loss);
        opt.step();
      } else {
        NoGradGuard ng;
        (void)model(x);
      }
    };
    for (int i = 0; i < warmup; ++i) step();
    sync(dev);
    // One more eager step, counted: host synchronisations and launches, and the host time to queue it.
    kernels::reset_flop_count();
    const DeviceWorkCounts c0 = device_work_counts();
    const auto q0 = Clock::now();
    step();
    const double queue_ms = 1e3 * seconds_since(q0);
    const DeviceWorkCounts per_step = device_work_counts() - c0;
    const double flops_per_step = static_cast<double>(kernels::flop_count());
    sync(dev);
    std::unique_ptr<DeviceGraph> step_graph;
    if (graph) step_graph = DeviceGraph::capture(dev, step);
    using TraceFn = void (*)(const char*);
    using TraceEndFn = void (*)();
    TraceFn trace_begin = nullptr;
    TraceEndFn trace_end = nullptr;
    if (kernel_trace) {
      trace_begin = reinterpret_cast<TraceFn>(dlsym(RTLD_DEFAULT, "livernet_trace_begin"));
      trace_end = reinterpret_cast<TraceEndFn>(dlsym(RTLD_DEFAULT, "livernet_trace_end"));
      if (!trace_begin || !trace_end)
        std::fprintf(stderr, "bench: --kernel-trace: no tracer loaded (LD_PRELOAD=.../libkernel_trace.so); not tracing\n");
    }
    Allocator& alloc = allocator_for(dev);
    alloc.reset_peak_stats();
    if (step_graph) {  // the first replay uploads the graph: keep it out of the timing
      step_graph->replay();
      sync(dev);
    }
    const std::string trace_label = str_cat(model_name, train ? " train" : " inference", " b", batch, " ", size, "x",
                                            size, graph ? " graph" : " eager");
    if (trace_begin) trace_begin(trace_label.c_str());
    const auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i) {
      if (step_graph) step_graph->replay();
      else step();
    }
    sync(dev);
    const double secs = seconds_since(t0);
    if (trace_end) trace_end();

    const double ips = batch * iters / secs;
    const AllocatorStats st = alloc.stats();
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);

    std::printf("%s", build_info().c_str());
    std::printf("bench: %s (%s flavour), %d classes, %s, %s, batch %d at %dx%d, %s\n", model_name.c_str(),
                choice_name(cfg.flavour), classes, dev.str().c_str(), dtype_name(dt), batch, size, size,
                train ? "training step (forward + backward + SGD)" : "forward (inference)");
    std::printf("  %.2f images/s   %.1f ms/step   %.1f GFLOP/step (conv+gemm)   %.1f GFLOP/s\n", ips, 1e3 * secs / iters,
                flops_per_step / 1e9, flops_per_step * iters / secs / 1e9);
    std::printf("  peak memory (%s allocator): %.1f MiB allocated, %.1f MiB reserved; max RSS %.1f MiB\n",
                dev.str().c_str(), st.peak_allocated_bytes / 1048576.0, st.peak_reserved_bytes / 1048576.0,
                ru.ru_maxrss / 1024.0);
    std::printf("  per eager step: %lld host syncs, %lld device launches, %.1f ms of host time to queue it%s\n",
                static_cast<long long>(per_step.host_syncs), static_cast<long long>(per_step.launches), queue_ms,
                step_graph ? "; timed steps: CUDA graph replays (1 launch, 0 syncs each)" : "");
    nlohmann::json j;
    j["model"] = model_name;
    j["device"] = dev.str();
    j["dtype"] = dtype_name(dt);
    j["batch"] = batch;
    j["size"] = size;
    j["train"] = train;
    j["images_per_s"] = ips;
    j["ms_per_step"] = 1e3 * secs / iters;
    j["gflop_per_step"] = flops_per_step / 1e9;
    j["peak_memory_bytes"] = st.peak_allocated_bytes;
    j["peak_reserved_bytes"] = st.peak_reserved_bytes;
    j["max_rss_bytes"] = static_cast<std::int64_t>(ru.ru_maxrss) * 1024;
    j["graph"] = graph;
    j["host_syncs_per_step"] = step_graph ? 0 : per_step.host_syncs;
    j["launches_per_step"] = step_graph ? 1 : per_step.launches;
    j["eager_host_syncs_per_step"] = per_step.host_syncs;
    j["eager_launches_per_step"] = per_step.launches;
    j["eager_queue_ms"] = queue_ms;
    if (dev.is_cuda() && with_mfu) {
      const double peak = measure_matmul_tflops(dev, dt);
      const double mfu = flops_per_step * iters / secs / 1e12 / peak;
      std::printf("  matmul rate (%s, measured): %.0f TFLOP/s -> MFU %.1f %%\n", dtype_name(dt), peak, 100 * mfu);
      j["matmul_tflops"] = peak;
      j["mfu"] = mfu;
    }
    if (per_block) {
      // Forward time of each block (synchronised after each one, so slower than the pipelined total).
      NoGradGuard ng;
      std::vector<std::pair<std::string, double>> times;
      const Tensor in = model.prepare_input(x);
      for (int rep = 0; rep < 2; ++rep) {
        times.clear();
        Tensor h = in;
        auto time_it = [&](const std::string& name, auto&& fn) {
          sync(dev);
          const auto b0 = Clock::now();
          h = fn(h);
          sync(dev);
          times.emplace_back(name, 1e3 * seconds_since(b0));
        };
        std::vector<std::pair<std::string, Tensor>> unused;
        time_it("stem", [&](const Tensor& t) {
          Tensor s = t;
          int i = 0;
          for (const char* n : {"Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"}) {
            s = (*model.backbone->find(n))(s);
            if (i == 2 || i == 4) s = F::max_pool2d(s, kernels::Pool2dParams::make(3, 2, 0));
            ++i;
          }
          return s;
        });
        for (auto& [name, block] : model.backbone->blocks()) time_it(name, [&](const Tensor& t) { return (*block)(t); });
        time_it("pool+head", [&](const Tensor& t) { return model.classify(F::global_avg_pool(t)); });
      }
      std::printf("  per-block forward (ms):");
      nlohmann::json blocks;
      for (auto& [n, ms] : times) {
        std::printf(" %s %.2f", n.c_str(), ms);
        blocks[n] = ms;
      }
      std::printf("\n");
      j["block_forward_ms"] = blocks;
    }
    if (profile && train) {
      enable_backward_profiling([dev] { sync(dev); });
      step();
      disable_backward_profiling();
      const auto ops = take_backward_profile();
      double total = 0;
      for (const auto& [n, t] : ops) total += t.ms;
      std::printf("  backward by op (one step, synchronised per op; %.1f ms in all):", total);
      nlohmann::json bj;
      for (const auto& [n, t] : ops) {
        std::printf(" %s %.1f (%lld)", n.c_str(), t.ms, static_cast<long long>(t.calls));
        bj[n] = {{"ms", t.ms}, {"calls", t.calls}};
      }
      std::printf("\n");
      j["backward_ms_by_op"] = bj;
    }
    if (!json_path.empty()) {
      std::ofstream out(json_path);
      LN_CHECK(out, json_path, ": cannot create");
      out << j.dump(2) << "\n";
      LN_CHECK(out.good(), json_path, ": write failed");
    }
    return 0;
  });
}
