#include "train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <thread>

#include "autograd/autograd.h"
#include "data/loader.h"
#include "data/merge.h"
#include "dist/comm.h"
#include "dist/data_parallel.h"
#include "io/csv.h"
#include "io/hdf5.h"
#include "kernels/nn.h"
#include "kernels/tensor_ops.h"
#include "models/weights.h"
#include "optim/optimizer.h"
#include "optim/scheduler.h"
#include "train/model_usage.h"

namespace livernet::train {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::atomic<bool>& interrupt_flag() {
  static std::atomic<bool> flag{false};
  return flag;
}

int positive_class_index(const TrainConfig& cfg, const std::vector<std::string>& names) {
  if (!cfg.positive_class.empty()) {
    auto it = std::find(names.begin(), names.end(), cfg.positive_class);
    LN_CHECK(it != names.end(), "config: data.positive_class '", cfg.positive_class, "' is not one of the classes");
    return static_cast<int>(it - names.begin());
  }
  auto it = std::find(names.begin(), names.end(), "metastasis");
  return it != names.end() ? static_cast<int>(it - names.begin()) : 1;
}

Tensor make_inputs(const data::Dataset& d, const std::vector<std::int64_t>& indices, const TrainConfig& cfg) {
  const std::int64_t s = cfg.model.input_size;
  Tensor out = Tensor::empty(Shape{static_cast<std::int64_t>(indices.size()), s, s, 1});
  data::InputConfig in{cfg.window, static_cast<int>(s)};
  for (std::size_t k = 0; k < indices.size(); ++k)
    data::make_input(d.images[indices[k]], in, data::AugmentConfig{}, 0, 0, 0, out.data<float>() + k * s * s);
  return out;
}

std::vector<std::vector<double>> predict_probs(LesionClassifier& model, const data::Dataset& d,
                                               const std::vector<std::int64_t>& indices, const TrainConfig& cfg,
                                               Device device, int batch) {
  NoGradGuard ng;
  model.eval();
  // Predictions in f32 whatever the training precision, as tools/evaluate and tools/predict make them:
  // a run's predictions.csv and metrics then equal what the tools give for the same weights (in bf16 the
  // probabilities moved by up to 0.12 on an H200, 2026-11-29).
  const DType training_dtype = model.compute_dtype();
  model.set_compute_dtype(DType::f32);
  struct Restore {
    LesionClassifier& m;
    DType d;
    ~Restore() { m.set_compute_dtype(d); }
  } restore{model, training_dtype};
  std::vector<std::vector<double>> probs;
  for (std::size_t s = 0; s < indices.size(); s += batch) {
    const std::vector<std::int64_t> part(indices.begin() + s, indices.begin() + std::min(indices.size(), s + batch));
    const Tensor p = kernels::softmax(model(make_inputs(d, part, cfg).to(device)));
    const std::vector<double> v = p.to_vector<double>();
    const std::size_t k = static_cast<std::size_t>(p.size(1));
    for (std::size_t i = 0; i < part.size(); ++i) probs.emplace_back(v.begin() + i * k, v.begin() + (i + 1) * k);
  }
  return probs;
}

namespace {

// Rows of a fold's history.csv (one per finished epoch), 0 when there is none.
int completed_epochs(const std::string& history_path) {
  std::ifstream in(history_path);
  int rows = -1;  // the header
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) ++rows;
  return std::max(rows, 0);
}

// runtime.loader_threads, with 0 = auto: on the CPU one (the compute uses every core); for a GPU half the
// cores, at most 8: one thread making 299x299 inputs kept an H200 waiting 28-40% of each epoch (2026-11-29).
// The inputs do not depend on the number of threads (data/loader.h).
int loader_threads(const TrainConfig& cfg, Device dev) {
  if (cfg.loader_threads > 0) return cfg.loader_threads;
  if (dev.is_cpu()) return 1;
  return std::clamp(static_cast<int>(std::thread::hardware_concurrency()) / 2, 1, 8);
}

struct FoldState {
  int epoch = 0;
  std::int64_t batch = 0;
  std::int64_t global_step = 0;
  double loss_sum = 0;
  std::int64_t loss_count = 0;
  double best = std::nan("");
  int best_epoch = -1;
  int bad_epochs = 0;
  float lr = 0;
  std::int64_t skipped_steps = 0;
  float loss_scale = 65536.f;
  int scaler_good = 0;
  double seconds = 0, data_wait = 0;
  std::int64_t images = 0;
  std::vector<std::string> history;
  bool done = false;

  json to_json() const {
    return json{{"epoch", epoch}, {"batch", batch}, {"global_step", global_step}, {"loss_sum", loss_sum},
                {"loss_count", loss_count}, {"best", std::isnan(best) ? json(nullptr) : json(best)},
                {"best_epoch", best_epoch}, {"bad_epochs", bad_epochs}, {"lr", lr}, {"skipped_steps", skipped_steps},
                {"loss_scale", loss_scale}, {"scaler_good", scaler_good}, {"seconds", seconds},
                {"data_wait", data_wait}, {"images", images}, {"history", history}, {"done", done}};
  }
  static FoldState from_json(const json& j) {
    FoldState s;
    s.epoch = j.at("epoch");
    s.batch = j.at("batch");
    s.global_step = j.at("global_step");
    s.loss_sum = j.at("loss_sum");
    s.loss_count = j.at("loss_count");
    s.best = j.at("best").is_null() ? std::nan("") : j.at("best").get<double>();
    s.best_epoch = j.at("best_epoch");
    s.bad_epochs = j.at("bad_epochs");
    s.lr = j.at("lr");
    s.skipped_steps = j.at("skipped_steps");
    s.loss_scale = j.at("loss_scale");
    s.scaler_good = j.at("scaler_good");
    s.seconds = j.at("seconds");
    s.data_wait = j.at("data_wait");
    s.images = j.at("images");
    s.history = j.at("history").get<std::vector<std::string>>();
    s.done = j.at("done");
    return s;
  }
};

// Doubles as exact text ("%.17g"; also inf and nan, which JSON numbers cannot hold).
std::map<std::string, std::string> encode_doubles(const std::map<std::string, double>& m) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : m) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    out[k] = buf;
  }
  return out;
}

std::map<std::string, double> decode_doubles(const std::map<std::string, std::string>& m) {
  std::map<std::string, double> out;
  for (const auto& [k, v] : m) out[k] = std::strtod(v.c_str(), nullptr);
  return out;
}

const char* kHistoryHeader = "epoch,train_loss,val_loss,val_accuracy,val_auc,lr,seconds,data_wait_fraction,skipped_steps";

void save_checkpoint(const std::string& path, LesionClassifier& model, const Optimizer& opt, const Scheduler& sched,
                     const FoldState& st, const TrainConfig& cfg) {
  io::save_weights(
      model, model.config(), path,
      [&](io::H5File& f) {
        for (const auto& [key, t] : opt.state()) {
          const auto slash = key.rfind('/');
          f.write("optimizer/" + io::dataset_path(key.substr(0, slash)) + "/" + key.substr(slash + 1), t);
        }
        f.write_string_attr("/", "optimizer", opt.name());
        f.write_int_attr("/", "optimizer_steps", opt.steps());
        f.write_string_attr("/", "scheduler_state", json(encode_doubles(sched.state())).dump());
        f.write_string_attr("/", "trainer_state", st.to_json().dump());
        f.write_string_attr("/", "train_config", cfg.to_yaml());
      },
      io::kCheckpointFormat);
}

void load_checkpoint(const std::string& path, LesionClassifier& model, Optimizer& opt, Scheduler& sched, FoldState& st) {
  io::load_weights(model, path);
  io::H5File f = io::H5File::open(path);
  LN_CHECK(f.read_string_attr("/", "format") == io::kCheckpointFormat, path, ": not a training checkpoint");
  LN_CHECK(f.read_string_attr("/", "optimizer") == opt.name(), path, ": written with optimizer '",
           f.read_string_attr("/", "optimizer"), "', the configuration asks for '", opt.name(), "'");
  std::map<std::string, Tensor> state;
  for (const std::string& d : f.datasets()) {
    if (d.rfind("optimizer/", 0) != 0) continue;
    const std::string rest = d.substr(10);
    const auto slash = rest.rfind('/');
    std::string name = rest.substr(0, slash);
    std::replace(name.begin(), name.end(), '/', '.');
    state[name + "/" + rest.substr(slash + 1)] = f.read(d, DType::f32);
  }
  opt.load_state(state, f.read_int_attr("/", "optimizer_steps"));
  try {
    sched.load_state(decode_doubles(json::parse(f.read_string_attr("/", "scheduler_state")).get<std::map<std::string, std::string>>()));
    st = FoldState::from_json(json::parse(f.read_string_attr("/", "trainer_state")));
  } catch (const json::exception& e) {
    LN_FAIL(path, ": damaged training state (", e.what(), ")");
  }
  opt.set_lr(st.lr);
}

// "Precise BN": replaces every (unfrozen) batch norm's running statistics by their average over batches of
// training samples under the current weights (momentum 1/(k+1) at batch k: a plain cumulative mean).
void recompute_bn_statistics(LesionClassifier& model, const data::Dataset& d, const std::vector<std::int64_t>& train,
                             const TrainConfig& cfg, Device dev) {
  if (cfg.precise_bn_samples <= 0) return;
  std::vector<BatchNorm2d*> bns;
  for (auto& [name, m] : model.named_modules())
    if (m->type_name() == "BatchNorm2d" && !m->frozen()) bns.push_back(static_cast<BatchNorm2d*>(m));
  if (bns.empty()) return;
  std::vector<float> saved;
  for (BatchNorm2d* bn : bns) saved.push_back(bn->momentum);
  const std::size_t n = std::min<std::size_t>(train.size(), static_cast<std::size_t>(cfg.precise_bn_samples));
  NoGradGuard ng;
  model.train();
  int k = 0;
  // Whole batches only: a tiny last batch would give poor statistics.
  const std::size_t bs = std::min<std::size_t>(static_cast<std::size_t>(cfg.batch_size), n);
  for (std::size_t s = 0; s + bs <= n; s += bs, ++k) {
    for (BatchNorm2d* bn : bns) bn->momentum = 1.f / static_cast<float>(k + 1);
    const std::vector<std::int64_t> part(train.begin() + s, train.begin() + s + bs);
    (void)model.features(make_inputs(d, part, cfg).to(dev));
  }
  for (std::size_t i = 0; i < bns.size(); ++i) bns[i]->momentum = saved[i];
}

struct Eval {
  double loss, accuracy, auc;
};

Eval evaluate(LesionClassifier& model, const data::Dataset& d, const std::vector<std::int64_t>& idx, const TrainConfig& cfg,
              Device dev, int positive) {
  const auto probs = predict_probs(model, d, idx, cfg, dev, cfg.batch_size);
  std::vector<int> labels;
  double loss = 0;
  for (std::size_t i = 0; i < idx.size(); ++i) {
    labels.push_back(d.labels[idx[i]]);
    loss += -std::log(std::max(probs[i][labels.back()], 1e-12));
  }
  const Metrics m = compute_metrics(probs, labels, positive);
  return {loss / static_cast<double>(idx.size()), m.accuracy, m.auc};
}

bool improved(Monitor monitor, double value, double best) {
  if (std::isnan(value)) return false;
  if (std::isnan(best)) return true;
  return monitor == Monitor::val_loss ? value < best : value > best;
}

// The whole run's clock for the epoch lines: time since this process started training, and an estimate
// of what is left from the epochs this process has trained so far (an upper bound: early stopping may
// end folds sooner).
struct RunClock {
  Clock::time_point start = Clock::now();
  int epochs_left = 0;  // folds x epochs not yet trained when this process started
  int epochs_done = 0;  // trained by this process
  std::string line() const {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    std::string s = "run " + format_duration(elapsed);
    const int left = epochs_left - epochs_done;
    if (epochs_done > 0 && left > 0) s += ", up to " + format_duration(elapsed / epochs_done * left) + " left";
    return s;
  }
};

}  // namespace

namespace {

ModelConfig check_flavour(const std::string& path, const ModelConfig& model) {
  const ModelConfig w = io::read_model_config(path);
  LN_CHECK(w.flavour == model.flavour, path, ": weights of the ", choice_name(w.flavour), " flavour, but model.flavour is ",
           choice_name(model.flavour), " (the batch norms and pools differ); set model.flavour: ", choice_name(w.flavour));
  return w;
}

}  // namespace

io::LoadReport load_initial_weights(LesionClassifier& model, const std::string& path) {
  (void)check_flavour(path, model.config());
  // Strict over the backbone: a tensor the file lacks or has in another shape, or one the model does not
  // have, is an error (weights of another architecture, a truncated conversion). Only the residual
  // shortcuts may be absent (not part of ImageNet InceptionV3: they keep model.residual_init); the head is
  // never loaded from initial weights.
  io::LoadOptions opt;
  opt.strict = true;
  opt.only_prefixes = {"backbone."};
  opt.may_be_missing = {".shortcut."};
  return io::load_weights(model, path, opt);
}

ModelConfig check_initial_weights(const std::string& path, const ModelConfig& model) {
  const ModelConfig w = check_flavour(path, model);
  LesionClassifier trial(model);  // a load into a fresh model finds a missing, extra or misshapen tensor now
  (void)load_initial_weights(trial, path);
  return w;
}

namespace {

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& cfg, const std::vector<NamedParam>& params) {
  if (cfg.optimizer == OptimizerKind::sgd)
    return std::make_unique<SGD>(params, SgdOptions{.lr = cfg.lr, .momentum = cfg.momentum,
                                                    .weight_decay = cfg.weight_decay, .nesterov = cfg.nesterov});
  return std::make_unique<Adam>(params, AdamOptions{.lr = cfg.lr, .weight_decay = cfg.weight_decay,
                                                    .decoupled = cfg.optimizer == OptimizerKind::adamw});
}

std::unique_ptr<Scheduler> make_scheduler(const TrainConfig& cfg, Optimizer& opt) {
  switch (cfg.schedule) {
    case Schedule::plateau:
      return std::make_unique<ReduceOnPlateau>(opt, cfg.plateau_factor, cfg.plateau_patience, cfg.min_lr,
                                               cfg.monitor != Monitor::val_loss);
    case Schedule::cosine: return std::make_unique<CosineWarmup>(opt, cfg.warmup_epochs, cfg.epochs, cfg.min_lr);
    case Schedule::step: return std::make_unique<StepLR>(opt, cfg.step_size, cfg.step_gamma);
    case Schedule::none: break;
  }
  return std::make_unique<StepLR>(opt, 1 << 30, 1.f);
}

// Class weights for balance = class_weight: N / (K * n_c) over the training part.
Tensor balanced_class_weights(const data::Dataset& data, const std::vector<std::int64_t>& train, Device dev) {
  std::vector<float> w(data.num_classes(), 0.f);
  for (std::int64_t i : train) w[data.labels[i]] += 1;
  for (float& c : w) c = c > 0 ? static_cast<float>(train.size()) / (data.num_classes() * c) : 0.f;
  return Tensor::from_vector(w, Shape{data.num_classes()}, dev);
}

// The fold's test predictions and metrics with the weights `model` holds.
FoldResult test_fold(LesionClassifier& model, const data::Dataset& data, const Fold& fold, int k, const TrainConfig& cfg,
                     Device dev, int positive) {
  FoldResult r;
  r.fold = k;
  r.test_indices = fold.test;
  r.test_probs = predict_probs(model, data, fold.test, cfg, dev, cfg.batch_size);
  std::vector<int> labels;
  for (std::int64_t i : fold.test) labels.push_back(data.labels[i]);
  r.metrics = compute_metrics(r.test_probs, labels, positive);
  return r;
}

// Data-parallel training (runtime.parallel = data): the rows of the epoch's global batch g that process `rank` of
// `ranks` takes, [lo, hi) within the batch: a contiguous even split, so that every process's shares of the
// epoch are one list its loader walks in batches of batch_size / ranks.
std::pair<std::int64_t, std::int64_t> shard_of(std::int64_t rows, int rank, int ranks) {
  return {rows * rank / ranks, rows * (rank + 1) / ranks};
}

// The sum of class weights over the rows of `labels`' indices in [lo, hi) of `order` (the rows' count without
// class weights): cross_entropy's normaliser, so that each process can weight its share's mean loss by its share
// of the whole batch's normaliser.
double loss_normaliser(const std::vector<std::int64_t>& order, std::int64_t lo, std::int64_t hi,
                       const std::vector<int>& labels, const std::vector<float>& class_weights) {
  double d = 0;
  for (std::int64_t i = lo; i < hi; ++i)
    d += class_weights.empty() ? 1.0 : class_weights[static_cast<std::size_t>(labels[order[i]])];
  return d;
}

FoldResult train_fold(const TrainConfig& cfg, const data::Dataset& data, const Fold& fold, int k,
                      const std::string& run_dir, Device dev, DType dtype, int positive, Progress& progress,
                      const TrainHooks& hooks, RunClock& clock, dist::Comm* dp_job = nullptr) {
  // Data-parallel (dp_job: every process of the job trains this fold together): process 0 writes the fold's
  // files and evaluates; every process takes its share of each batch and the summed gradients.
  const int rank = dp_job ? dp_job->rank() : 0, ranks = dp_job ? dp_job->size() : 1;
  const bool writer = rank == 0;
  // A fold trains on its training patients, selects its best epoch on its validation patients and is tested
  // on its test patients. The final model (cv.final: a fold of every patient and no validation or test
  // patients) trains for cfg.epochs and keeps its last weights, RUN/final/model.h5.
  const bool final_model = fold.val.empty();
  const std::string dir = final_model ? final_dir(run_dir) : fold_dir(run_dir, k);
  const std::string label = final_model ? std::string("final model") : str_cat("fold ", k + 1, "/", cfg.folds);
  fs::create_directories(dir);
  const std::string ckpt = dir + "/checkpoint.h5", best_path = dir + (final_model ? "/model.h5" : "/best.h5");
  const std::uint64_t seed = cfg.seed * 1000003ull + static_cast<std::uint64_t>(k);
  init::set_seed(seed);
  LesionClassifier model(cfg.model);
  if (!cfg.weights.empty()) {
    const io::LoadReport r = load_initial_weights(model, cfg.weights);
    if (k == 0) progress.line("initial weights " + cfg.weights + ": " + r.summary());
  }
  model.to(dev);
  model.set_compute_dtype(dtype);
  std::vector<NamedParam> params = model.named_parameters();
  std::unique_ptr<dist::DataParallel> dp;
  if (dp_job) dp = std::make_unique<dist::DataParallel>(*dp_job, params);
  std::unique_ptr<Optimizer> opt = make_optimizer(cfg, params);
  std::unique_ptr<Scheduler> sched = make_scheduler(cfg, *opt);
  FoldState st;
  st.lr = opt->lr();
  if (fs::exists(ckpt)) {
    load_checkpoint(ckpt, model, *opt, *sched, st);
    progress.line(
        str_cat(label, ": resuming at epoch ", st.epoch + 1, st.batch ? str_cat(", batch ", st.batch + 1) : ""));
  }
  if (dp) {
    // Every process starts from process 0's weights (the same seed gives the same, but a resumed fold loaded them
    // from process 0's checkpoint): one copy of the model per fold.
    std::vector<Tensor> state;
    for (const auto& p : params) state.push_back(*p.tensor);
    for (const auto& b : model.named_buffers()) state.push_back(*b.tensor);
    dp->broadcast(state);
    progress.line(str_cat(label, ": data-parallel over ", ranks, " processes (", dp->backend(), "), ",
                          cfg.batch_size / ranks, " images each per batch of ", cfg.batch_size,
                          cfg.sync_batch_norm ? ", synchronised batch norm" : ", batch norm per process"));
  }
  const Tensor class_weights = cfg.balance == Balance::class_weight ? balanced_class_weights(data, fold.train, dev) : Tensor();
  const std::vector<float> class_weights_host =
      class_weights.defined() ? class_weights.to_vector<float>() : std::vector<float>();
  LossScaler scaler(st.loss_scale);
  scaler.set_state(st.loss_scale, st.scaler_good);
  const bool fp16 = dtype == DType::f16;
  const data::InputConfig input{cfg.window, cfg.model.input_size};
  while (!st.done && st.epoch < cfg.epochs) {
    const int e = st.epoch;
    model.freeze("backbone", e < cfg.freeze_backbone_epochs);
    std::vector<std::int64_t> order = epoch_order(fold.train, data.labels, data.num_classes(), cfg.balance == Balance::oversample,
                                                  seed, static_cast<std::uint64_t>(e));
    const std::int64_t batches = (static_cast<std::int64_t>(order.size()) + cfg.batch_size - 1) / cfg.batch_size;
    order.erase(order.begin(), order.begin() + std::min<std::int64_t>(st.batch * cfg.batch_size, order.size()));
    // Data-parallel: this process's rows of each batch, one after the other. A last batch of fewer images than
    // processes is left out (one process would have trained on it; at most ranks - 1 images of the epoch).
    std::vector<std::int64_t> my_rows = order;
    if (dp) {
      my_rows.clear();
      const auto n = static_cast<std::int64_t>(order.size());
      for (std::int64_t g0 = 0; g0 < n; g0 += cfg.batch_size) {
        const std::int64_t rows = std::min<std::int64_t>(cfg.batch_size, n - g0);
        if (rows < ranks) {
          order.resize(static_cast<std::size_t>(g0));
          progress.line(str_cat(label, " epoch ", e + 1, ": the last ", rows, " image(s) left out (fewer than the ",
                                ranks, " processes)"));
          break;
        }
        const auto [lo, hi] = shard_of(rows, rank, ranks);
        my_rows.insert(my_rows.end(), order.begin() + g0 + lo, order.begin() + g0 + hi);
      }
    }
    data::BatchLoader loader(data, my_rows, cfg.batch_size / ranks, input, cfg.augment, seed,
                             static_cast<std::uint64_t>(e), dev, loader_threads(cfg, dev));
    std::int64_t batch_start = 0;  // of the current global batch in `order`
    const auto t0 = Clock::now();
    std::int64_t seen_now = 0;
    data::Batch b;
    while (loader.next(b)) {
      model.train();
      model.set_dropout_rng(seed, static_cast<std::uint64_t>(st.global_step));
      opt->zero_grad();
      const std::int64_t global_rows =
          std::min<std::int64_t>(cfg.batch_size, static_cast<std::int64_t>(order.size()) - batch_start);
      Tensor loss;
      if (dp) {
        // This process's mean loss, weighted by its share of the batch's normaliser: the processes' gradients then
        // sum to the gradient of the whole batch's mean loss.
        const auto [lo, hi] = shard_of(global_rows, rank, ranks);
        LN_CHECK(static_cast<std::int64_t>(b.indices.size()) == hi - lo, "data-parallel batch of ", b.indices.size(),
                 " images where the share is ", hi - lo);
        dist::ShardScope shard(*dp, lo, hi - lo, global_rows, cfg.sync_batch_norm);
        const double share =
            loss_normaliser(order, batch_start + lo, batch_start + hi, data.labels, class_weights_host) /
            loss_normaliser(order, batch_start, batch_start + global_rows, data.labels, class_weights_host);
        loss = F::scale(F::cross_entropy(model(b.images), b.labels, class_weights, cfg.label_smoothing),
                        static_cast<float>(share));
        dp->backward(fp16 ? F::scale(loss, scaler.scale()) : loss);
        // The whole batch's loss, and whether any process was interrupted, summed over the processes.
        Tensor shared = kernels::concat(
            {loss.detach().reshape({1}), full(Shape{1}, interrupt_flag() ? 1.0 : 0.0, DType::f32, dev)}, 0);
        dp->all_reduce(shared);
        loss = shared.slice0(0, 1);
        if (shared.slice0(1, 2).item() > 0) interrupt_flag() = true;
      } else {
        loss = F::cross_entropy(model(b.images), b.labels, class_weights, cfg.label_smoothing);
        backward((fp16 ? F::scale(loss, scaler.scale()) : loss));
      }
      batch_start += global_rows;
      // The step's one wait for the GPU: the loss, and the gradients' sum of squares and finiteness
      // (summed on the device), read together. A non-finite loss gives non-finite gradients too.
      const std::vector<double> seen =
          kernels::concat({loss.reshape({1}), grad_stats_device(params)}, 0).to_vector<double>();
      const double lv = seen[0];
      const double unscale = fp16 ? 1.0 / scaler.scale() : 1.0;  // fp16: the gradients are of the scaled loss
      const double sq = seen[1] * unscale * unscale;
      bool finite = std::isfinite(lv) && seen[2] == 0 && std::isfinite(sq);
      if (fp16) scaler.update(finite);
      // Unscaling (fp16) and clipping (as torch.nn.utils.clip_grad_norm_) fold into one factor that the
      // optimizer applies to the gradients as it reads them.
      double grad_mul = unscale;
      if (finite && cfg.clip_grad_norm > 0) {
        const double norm = std::sqrt(sq);
        if (norm > cfg.clip_grad_norm) grad_mul *= cfg.clip_grad_norm / (norm + 1e-6);
      }
      if (!finite) {
        if (cfg.nonfinite == NonFinite::stop)
          throw Error(str_cat("non-finite ", std::isfinite(lv) ? "gradients" : "loss", " in ", label, " epoch ", e + 1,
                              " step ", st.global_step,
                              "; stopping (train.nonfinite = stop); the last good checkpoint is ",
                              fs::exists(ckpt) ? ckpt : std::string("not written yet")));
        ++st.skipped_steps;
        progress.line(str_cat(label, " epoch ", e + 1, ": non-finite ", std::isfinite(lv) ? "gradients" : "loss",
                              " at step ", st.global_step, ": step skipped",
                              fp16 ? str_cat(", loss scale now ", scaler.scale()) : ""));
        opt->zero_grad();
      } else {
        opt->step(Tensor(), grad_mul == 1.0 ? Tensor() : full(Shape{1}, grad_mul, DType::f32, dev));
        st.loss_sum += lv * static_cast<double>(global_rows);
        st.loss_count += global_rows;
      }
      ++st.global_step;
      ++st.batch;
      if (hooks.on_step) hooks.on_step(k, st.global_step);
      st.images += global_rows;
      seen_now += global_rows;
      const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
      progress.update(static_cast<double>(st.batch), static_cast<double>(batches),
                      str_cat(label, " epoch ", e + 1, "/", cfg.epochs, " loss ",
                              str_fixed(st.loss_count ? st.loss_sum / st.loss_count : 0, 3), " ",
                              str_fixed(static_cast<double>(seen_now) / std::max(elapsed, 1e-9), 1), " img/s"));
      if (interrupt_flag()) {
        st.seconds += elapsed;
        st.loss_scale = scaler.scale();
        st.scaler_good = scaler.good_steps();
        st.lr = opt->lr();
        if (writer) save_checkpoint(ckpt, model, *opt, *sched, st, cfg);
        throw Interrupted(str_cat("interrupted: checkpoint written to ", ckpt, "; continue with --resume ", run_dir));
      }
    }
    const double train_secs = std::chrono::duration<double>(Clock::now() - t0).count();
    // End of epoch: validation, schedule, best checkpoint, early stopping, history.
    const double train_loss = st.loss_count ? st.loss_sum / st.loss_count : std::nan("");
    // The final model has no validation patients: its plateau schedule follows the training loss.
    Eval v{train_loss, std::nan(""), std::nan("")};
    if (writer) {
      recompute_bn_statistics(model, data, fold.train, cfg, dev);
      if (!final_model) v = evaluate(model, data, fold.val, cfg, dev, positive);
    }
    if (dp) {  // process 0's statistics and validation, so that every process decides alike
      std::vector<Tensor> buffers;
      for (const auto& b2 : model.named_buffers()) buffers.push_back(*b2.tensor);
      dp->broadcast(buffers);
      double vals[3] = {v.loss, v.accuracy, v.auc};
      const std::string got = dp_job->broadcast(std::string(reinterpret_cast<const char*>(vals), sizeof vals), 0);
      std::memcpy(vals, got.data(), sizeof vals);
      v = Eval{vals[0], vals[1], vals[2]};
    }
    const double monitored = cfg.monitor == Monitor::val_loss  ? v.loss
                             : cfg.monitor == Monitor::val_auc ? v.auc
                                                               : v.accuracy;
    const float lr_used = opt->lr();
    sched->step(e, monitored);
    if (final_model || improved(cfg.monitor, monitored, st.best)) {
      st.best = monitored;
      st.best_epoch = e;
      st.bad_epochs = 0;
      if (writer)
        io::save_weights(model, model.config(), best_path, [&](io::H5File& f) {
          ModelUsage u;
          u.window = cfg.window;
          u.positive_class = data.class_names[static_cast<std::size_t>(positive)];
          u.run = fs::path(run_dir).filename().string();
          u.extraction = data.extraction;
          write_model_usage(f, u);  // uncalibrated until the run has its out-of-fold predictions
        });
    } else {
      ++st.bad_epochs;
    }
    st.seconds += train_secs;
    st.data_wait += loader.wait_seconds();
    st.history.push_back(
        str_cat(e + 1, ",", str_fixed(train_loss, 6), ",", str_fixed(v.loss, 6), ",", str_fixed(v.accuracy, 6), ",",
                str_fixed(v.auc, 6), ",", lr_used, ",", str_fixed(train_secs, 2), ",",
                str_fixed(loader.wait_seconds() / std::max(train_secs, 1e-9), 3), ",", st.skipped_steps));
    ++clock.epochs_done;
    progress.line(str_cat(label, " epoch ", e + 1, "/", cfg.epochs, ": train loss ", str_fixed(train_loss, 4),
                          final_model ? std::string()
                                      : str_cat(", val loss ", str_fixed(v.loss, 4), " acc ", str_fixed(v.accuracy, 3),
                                                " auc ", str_fixed(v.auc, 3)),
                          ", lr ", lr_used, ", ",
                          str_fixed(static_cast<double>(seen_now) / std::max(train_secs, 1e-9), 1),
                          " img/s, data wait ", str_fixed(100 * loader.wait_seconds() / std::max(train_secs, 1e-9), 0),
                          "%, ", format_duration(train_secs), " (", clock.line(), ")"));
    st.epoch = e + 1;
    st.batch = 0;
    st.loss_sum = 0;
    st.loss_count = 0;
    st.images = 0;
    st.lr = opt->lr();
    st.loss_scale = scaler.scale();
    st.scaler_good = scaler.good_steps();
    if (cfg.early_stopping_patience > 0 && st.bad_epochs >= cfg.early_stopping_patience) {
      st.done = true;
      progress.line(str_cat("fold ", k + 1, ": early stop after epoch ", e + 1, " (no ", choice_name(cfg.monitor), " improvement for ",
                            cfg.early_stopping_patience, " epochs)"));
    }
    if (writer) {
      std::string text = std::string(kHistoryHeader) + "\n";
      for (const auto& row : st.history) text += row + "\n";
      io::write_text_file_atomically(dir + "/history.csv", text);
      save_checkpoint(ckpt, model, *opt, *sched, st, cfg);
    }
    if (interrupt_flag()) throw Interrupted(str_cat("interrupted: checkpoint written to ", ckpt, "; continue with --resume ", run_dir));
  }
  // Test predictions with the best weights.
  if (dp) {
    dp_job->barrier();  // process 0 has written best.h5
    progress.line(str_cat(label, ": gradients summed in ", dp->stats().steps, " steps, ", dp->stats().buckets,
                          " buckets, ", str_fixed(static_cast<double>(dp->stats().bytes) / 1e9, 2), " GB, ",
                          str_fixed(dp->stats().host_seconds, 1), " s of this process's time (copies, sums), ",
                          str_fixed(dp->stats().wait_seconds, 1), " s of it waiting after the backward pass"));
  }
  LN_CHECK(fs::exists(best_path), dir, ": no best checkpoint was written (every validation value was NaN?)");
  FoldResult r;
  if (!final_model && writer) {
    io::load_weights(model, best_path);
    r = test_fold(model, data, fold, k, cfg, dev, positive);
  }
  r.best_epoch = st.best_epoch + 1;
  r.epochs_run = st.epoch;
  r.seconds = st.seconds;
  return r;
}

json fold_result_json(const FoldResult& r) {
  return json{{"fold", r.fold + 1}, {"test_indices", r.test_indices}, {"test_probs", r.test_probs},
              {"best_epoch", r.best_epoch}, {"epochs_run", r.epochs_run}, {"seconds", r.seconds}};
}


}  // namespace

std::string fold_dir(const std::string& run_dir, int k) { return run_dir + "/fold_" + std::to_string(k + 1); }
std::string final_dir(const std::string& run_dir) { return run_dir + "/final"; }

std::string fold_model(const std::string& run_dir, int k) {
  const std::string w = fold_dir(run_dir, k) + "/best.h5";
  LN_CHECK(fs::exists(w) || !fs::exists(repeat_dir(run_dir, 0)), run_dir,
           ": holds repeats of the cross-validation (cv.repeats): give one of them, e.g. ", repeat_dir(run_dir, 0));
  LN_CHECK(fs::exists(w), w, ": missing (is the run finished? resume it with tools/train --resume ", run_dir, ")");
  return w;
}

int final_epochs(const std::vector<FoldResult>& folds) {
  LN_CHECK(!folds.empty(), "the final model's epoch count needs the folds' best epochs");
  std::vector<int> e;
  for (const FoldResult& f : folds) e.push_back(f.best_epoch);
  std::sort(e.begin(), e.end());
  const std::size_t n = e.size();
  // The median; of two middle values, their mean rounded up (an even count of folds).
  return n % 2 ? e[n / 2] : (e[n / 2 - 1] + e[n / 2] + 1) / 2;
}

void check_fold_numbering(const std::string& run_dir) {
  if (!fs::exists(run_dir + "/fold_0")) return;
  int n = 0;
  while (fs::exists(run_dir + "/fold_" + std::to_string(n))) ++n;
  LN_FAIL(run_dir, ": written by an older livernet that numbered the folds from 0 (fold_0); they are numbered from 1 now, "
          "as everywhere else; rename them: for k in $(seq ", n - 1, " -1 0); do mv ", run_dir, "/fold_$k ", run_dir,
          "/fold_$((k+1)); done");
}

std::vector<std::pair<std::string, Metrics>> per_source_metrics(const data::Dataset& d, const std::vector<FoldResult>& folds,
                                                                int positive) {
  std::vector<std::pair<std::string, Metrics>> out;
  for (const std::string& name : data::source_names(d)) {
    std::vector<std::vector<double>> probs;
    std::vector<int> labels;
    for (const auto& f : folds)
      for (std::size_t i = 0; i < f.test_indices.size(); ++i) {
        const auto idx = static_cast<std::size_t>(f.test_indices[i]);
        if (data::source_name(d.sources[idx]) != name) continue;
        probs.push_back(f.test_probs[i]);
        labels.push_back(d.labels[idx]);
      }
    if (probs.empty()) continue;
    Metrics m = compute_metrics(probs, labels, positive);
    const auto positives = std::count(labels.begin(), labels.end(), positive);
    const double nan = std::nan("");
    if (positives == 0) m.recall = nan;
    if (positives == static_cast<std::ptrdiff_t>(labels.size())) m.specificity = nan;
    out.emplace_back(name, m);
  }
  return out;
}

std::string metrics_table(const std::vector<FoldResult>& folds, const Metrics& pooled,
                          const std::vector<std::pair<std::string, Metrics>>& per_source) {
  std::string s = "               accuracy  precision  recall  specificity     f1     auc\n";
  auto row = [&](const std::string& name, const Metrics& m) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%-14s %8.3f %10.3f %7.3f %12.3f %6.3f %7.3f\n", name.c_str(), m.accuracy, m.precision,
                  m.recall, m.specificity, m.f1, m.auc);
    s += buf;
  };
  std::vector<Metrics> ms;
  for (const auto& f : folds) {
    row(str_cat("fold ", f.fold + 1), f.metrics);
    ms.push_back(f.metrics);
  }
  if (ms.size() > 1) {
    const auto ms_std = mean_std(ms);
    char buf[200];
    std::snprintf(buf, sizeof buf, "%-14s %8.3f %10.3f %7.3f %12.3f %6.3f %7.3f\n%-14s %8.3f %10.3f %7.3f %12.3f %6.3f %7.3f\n",
                  "mean", ms_std.at("accuracy").first, ms_std.at("precision").first, ms_std.at("recall").first,
                  ms_std.at("specificity").first, ms_std.at("f1").first, ms_std.at("auc").first, "+- std",
                  ms_std.at("accuracy").second, ms_std.at("precision").second, ms_std.at("recall").second,
                  ms_std.at("specificity").second, ms_std.at("f1").second, ms_std.at("auc").second);
    s += buf;
  }
  row("pooled", pooled);
  if (per_source.size() > 1)
    for (const auto& [name, m] : per_source) row(str_cat("  ", name.substr(0, 12)), m);
  return s;
}

std::string calibration_summary(const Calibration& c) {
  const std::string measured =
      str_cat("expected calibration error ", str_fixed(c.ece_before, 3), " -> ", str_fixed(c.ece_after, 3),
              ", log loss ", str_fixed(c.nll_before, 3), " -> ", str_fixed(c.nll_after, 3),
              " with each fold scaled by the temperature of the other folds");
  if (c.applied)
    return str_cat("calibration: temperature ", str_fixed(c.fitted, 3), " (fitted on ", c.n,
                   " out-of-fold predictions; ", measured, "); the fold models apply it");
  return str_cat("calibration: none applied: the temperature fitted on ", c.n, " out-of-fold predictions (",
                 str_fixed(c.fitted, 3), ") did not carry over to unseen folds (", measured, ")");
}

void write_results(const std::string& dir, const data::Dataset& d, const std::vector<FoldResult>& folds,
                   const Metrics& pooled, int positive, const std::string& extra, const Calibration* cal) {
  json j;
  j["classes"] = d.class_names;
  j["positive_class"] = d.class_names[positive];
  j["dataset"] = d.path;
  j["lesions"] = d.size();
  j["patients"] = d.num_patients();
  std::vector<Metrics> ms;
  for (const auto& f : folds) {
    json fj = f.metrics.as_map();
    fj["fold"] = f.fold + 1;
    fj["n"] = f.metrics.n;
    fj["confusion"] = f.metrics.confusion;
    fj["best_epoch"] = f.best_epoch;
    fj["epochs_run"] = f.epochs_run;
    j["folds"].push_back(fj);
    ms.push_back(f.metrics);
  }
  for (const auto& [name, v] : mean_std(ms)) {
    j["mean"][name] = v.first;
    j["std"][name] = v.second;
  }
  json pj = pooled.as_map();
  pj["n"] = pooled.n;
  pj["confusion"] = pooled.confusion;
  j["pooled"] = pj;
  for (const auto& [name, v] : pooled.as_map()) j[name] = v;  // plain names: the pooled (out-of-fold) values
  for (const auto& [name, m] : per_source_metrics(d, folds, positive)) {
    json sj = m.as_map();
    sj["n"] = m.n;
    sj["confusion"] = m.confusion;
    j["per_source"][name] = sj;
  }
  if (!extra.empty()) j["note"] = extra;
  if (cal) {
    auto finite_or_null = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
    j["calibration"] = {{"method", "temperature scaling, fitted on the out-of-fold predictions (minimum log loss); "
                                   "applied when the cross-fitted log loss falls"},
                        {"temperature", cal->temperature},
                        {"fitted_temperature", cal->fitted},
                        {"applied", cal->applied},
                        {"fold_temperatures", cal->fold_temperatures},
                        {"n", cal->n},
                        {"bins", cal->bins},
                        {"ece_before", finite_or_null(cal->ece_before)},
                        {"ece_after", finite_or_null(cal->ece_after)},
                        {"nll_before", finite_or_null(cal->nll_before)},
                        {"nll_after", finite_or_null(cal->nll_after)},
                        {"after", "each fold's predictions scaled by the temperature fitted on the other folds"}};
  }
  io::write_text_file_atomically(dir + "/metrics.json", j.dump(2) + "\n");
  std::vector<std::vector<std::string>> rows;
  const bool sources = !d.sources.empty();
  std::vector<std::string> header{"lesion_id", "patient_id", "fold", "label"};
  if (sources) header.insert(header.begin() + 2, "source");
  for (const auto& c : d.class_names) header.push_back("prob_" + c);
  rows.push_back(header);
  for (const auto& f : folds)
    for (std::size_t i = 0; i < f.test_indices.size(); ++i) {
      const std::int64_t idx = f.test_indices[i];
      std::vector<std::string> row{d.lesion_ids[idx], d.patient_ids[idx], std::to_string(f.fold + 1),
                                   d.class_names[d.labels[idx]]};
      if (sources) row.insert(row.begin() + 2, data::source_name(d.sources[idx]));
      for (double p : f.test_probs[i]) row.push_back(str_fixed(p, 6));
      rows.push_back(row);
    }
  io::write_csv(dir + "/predictions.csv", rows);
}

// The temporary files (".name.tmp.<pid>", io::write_file_atomically) of a process that was killed while
// writing: the files they were to replace are intact, so they are only clutter.
static void remove_stale_temporaries(const std::string& run_dir, Progress& progress) {
  std::error_code ec;
  std::vector<fs::path> stale;
  for (auto it = fs::recursive_directory_iterator(run_dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string n = it->path().filename().string();
    const auto at = n.rfind(".tmp.");
    if (n.size() < 2 || n[0] != '.' || at == std::string::npos || at + 5 >= n.size()) continue;
    if (n.find_first_not_of("0123456789", at + 5) != std::string::npos) continue;
    if (n.substr(at + 5) != std::to_string(::getpid())) stale.push_back(it->path());
  }
  for (const auto& p : stale) fs::remove(p, ec);
  if (!stale.empty()) progress.line(str_cat("removed ", stale.size(), " temporary file(s) left by an interrupted write"));
}

// cv.final: one model on every patient for the median of the folds' best epochs (RUN/final/model.h5), with
// the run's calibration. Resumable like a fold; a finished one (final/result.json) is kept.
static void train_final_model(const TrainConfig& cfg, const data::Dataset& data, RunSummary& summary,
                              const std::string& run_dir, const std::string& calibration_note, Device dev, DType dtype,
                              int positive, Progress& progress, const TrainHooks& hooks, RunClock& clock) {
  const std::string dir = final_dir(run_dir), done = dir + "/result.json";
  summary.final_epochs = final_epochs(summary.folds);
  summary.final_model = dir + "/model.h5";
  if (fs::exists(done)) {
    progress.line("final model: already done");
  } else {
    TrainConfig fc = cfg;
    fc.epochs = summary.final_epochs;
    fc.early_stopping_patience = 0;
    fc.monitor = Monitor::val_loss;  // followed on the training loss: there are no validation patients
    Fold all;
    all.train.resize(static_cast<std::size_t>(data.size()));
    std::iota(all.train.begin(), all.train.end(), std::int64_t{0});
    std::vector<int> best;
    for (const FoldResult& f : summary.folds) best.push_back(f.best_epoch);
    clock.epochs_left += fc.epochs - std::min(fc.epochs, completed_epochs(dir + "/history.csv"));
    progress.line(str_cat("final model: every patient (", data.num_patients(), " patients, ", data.size(),
                          " lesions) for ", fc.epochs, " epochs, the median of the folds' best epochs (",
                          json(best).dump(), ")"));
    const FoldResult r = train_fold(fc, data, all, cfg.folds, run_dir, dev, dtype, positive, progress, hooks, clock);
    const json j{{"epochs", fc.epochs},
                 {"fold_best_epochs", best},
                 {"patients", data.num_patients()},
                 {"lesions", data.size()},
                 {"seconds", r.seconds}};
    io::write_text_file_atomically(done, j.dump() + "\n");
  }
  // The temperature of the folds' out-of-fold predictions: the final model was trained as they were, on more
  // patients, and has no held-out predictions of its own to fit one on.
  std::optional<ModelUsage> u = read_model_usage(summary.final_model);
  LN_CHECK(u, summary.final_model, ": the final model records no usage");
  const std::string note =
      calibration_note + "; the fold models' temperature, as the final model has no held-out patients";
  if (u->temperature != summary.calibration.temperature || u->calibration != note) {
    u->temperature = summary.calibration.temperature;
    u->calibration = note;
    rewrite_model_usage(summary.final_model, *u);
  }
  progress.line(str_cat("final model: ", summary.final_model, " (", summary.final_epochs, " epochs on every patient)"));
}

void check_job_size(const TrainConfig& cfg, int processes) {
  if (processes <= 1) return;
  if (cfg.parallel == Parallel::data) {
    LN_CHECK(cfg.batch_size % processes == 0, "train.batch_size ", cfg.batch_size, " does not split evenly over ",
             processes, " processes (runtime.parallel: data): use a multiple of ", processes,
             " (the batch is the whole job's)");
  } else if (cfg.repeats > 1) {
    LN_CHECK(processes <= cfg.folds * cfg.repeats, processes, " processes for ", cfg.folds * cfg.repeats, " folds (",
             cfg.repeats, " repeats of ", cfg.folds, "): each process trains whole folds, so start at most ",
             cfg.folds * cfg.repeats);
  } else {
    LN_CHECK(processes <= cfg.folds, processes, " processes for ", cfg.folds,
             " folds: each process trains whole folds, so start at most ", cfg.folds, " (mpirun -np ", cfg.folds,
             "), or train each fold on every process (--parallel data)");
  }
}

RunSummary run_training(const TrainConfig& cfg, const std::string& run_dir, Progress& progress, const TrainHooks& hooks,
                        std::optional<data::Dataset> preloaded, dist::Comm* job) {
  return run_training(cfg, run_dir, progress, hooks, std::move(preloaded), JobShare{.job = job});
}

RunSummary run_training(const TrainConfig& cfg_in, const std::string& run_dir, Progress& progress,
                        const TrainHooks& hooks, std::optional<data::Dataset> preloaded, const JobShare& share) {
  dist::Comm* job = share.job;
  TrainConfig cfg = cfg_in;
  // A job of several processes shares the folds out: rank r trains folds r, r + size, ...; rank 0 then
  // gathers them from their result.json, as a resumed run does, and finishes the run alone.
  const int rank = job ? job->rank() : 0, ranks = job ? job->size() : 1;
  // runtime.parallel = data: every process trains every fold, each on its share of every batch.
  const bool data_parallel = cfg.parallel == Parallel::data && ranks > 1;
  if (share.gather) check_job_size(cfg, ranks);  // (else the caller checked the whole job's work)
  const auto owner = [&](int k) { return (share.first_item + k) % ranks; };
  const auto mine = [&](int k) { return data_parallel || owner(k) == rank; };
  check_fold_numbering(run_dir);
  // (With gather = false the caller did it before any process started: another may be writing here already.)
  if (rank == 0 && share.gather) remove_stale_temporaries(run_dir, progress);
  data::Dataset data = preloaded ? std::move(*preloaded)
                               : data::load_dataset(cfg.data, data::ManifestOptions{cfg.window, 32768.f, cfg.model.class_names});
  LN_CHECK(data.num_classes() >= 2, cfg.data, ": needs at least two classes");
  cfg.model.class_names = data.class_names;
  cfg.model.num_classes = data.num_classes();
  const int positive = positive_class_index(cfg, data.class_names);
  const Device dev = resolve_device(cfg.device);
  const DType dtype = cfg.precision == Precision::automatic ? (dev.is_cuda() ? DType::bf16 : DType::f32) : parse_dtype(choice_name(cfg.precision));
  kernels::set_deterministic(cfg.deterministic);
  progress.line(str_cat("data ", cfg.data, ": ", data.summary()));
  progress.line(str_cat("model ", cfg.model.arch, " (", choice_name(cfg.model.flavour), ", residual ",
                        choice_name(cfg.model.residual), "), input ", cfg.model.input_size, "x", cfg.model.input_size,
                        ", ", dev.str(), " ", dtype_name(dtype), ", ", cfg.folds, "-fold patient-level cross-validation"));
  const std::vector<Fold> folds = make_folds(data, cfg.folds, cfg.val_fraction, cfg.seed);
  {
    json sj;
    for (std::size_t f = 0; f < folds.size(); ++f)
      sj["folds"].push_back({{"fold", f + 1}, {"test_patients", folds[f].test_patients},
                             {"val_patients", folds[f].val_patients}, {"train", folds[f].train.size()},
                             {"val", folds[f].val.size()}, {"test", folds[f].test.size()}});
    sj["seed"] = cfg.seed;
    const std::string path = run_dir + "/splits.json";
    if (rank != 0) {
      // Rank 0 checks or writes it (the barrier below orders that before any fold starts).
    } else if (fs::exists(path)) {
      std::ifstream in(path);
      const json old = json::parse(in, nullptr, false);
      LN_CHECK(!old.is_discarded() && old == sj, path, ": the saved split differs from the one this data and seed give "
                                                  "(was the dataset changed?)");
    } else {
      io::write_text_file_atomically(path, sj.dump(2) + "\n");
    }
  }
  if (job && share.gather) job->barrier();
  RunSummary summary;
  summary.run_dir = run_dir;
  RunClock clock;
  for (int k = 0; k < cfg.folds; ++k) {
    if (!mine(k)) continue;
    // Finished folds, and the epochs a resumed fold has behind it, are not left to train.
    clock.epochs_left += cfg.epochs;
    const std::string dir = fold_dir(run_dir, k);
    if (fs::exists(dir + "/result.json")) clock.epochs_left -= cfg.epochs;
    else if (fs::exists(dir + "/checkpoint.h5")) clock.epochs_left -= std::min(cfg.epochs, completed_epochs(dir + "/history.csv"));
  }
  std::vector<std::optional<FoldResult>> trained(static_cast<std::size_t>(cfg.folds));
  for (int k = 0; k < cfg.folds; ++k) {
    if (!mine(k) || fs::exists(fold_dir(run_dir, k) + "/result.json")) continue;
    FoldResult r = train_fold(cfg, data, folds[k], k, run_dir, dev, dtype, positive, progress, hooks, clock,
                              data_parallel ? job : nullptr);
    clock.epochs_left -= cfg.epochs - r.epochs_run;  // epochs early stopping left out
    if (data_parallel && rank != 0) continue;        // process 0 tested the fold and writes its result
    io::write_text_file_atomically(fold_dir(run_dir, k) + "/result.json", fold_result_json(r).dump() + "\n");
    progress.line(str_cat("fold ", k + 1, "/", cfg.folds, ": best epoch ", r.best_epoch, " of ", r.epochs_run,
                          "; test accuracy ", str_fixed(r.metrics.accuracy, 3), ", F1 ", str_fixed(r.metrics.f1, 3),
                          ", AUC ", str_fixed(r.metrics.auc, 3), " (", r.metrics.n, " lesions)"));
    trained[static_cast<std::size_t>(k)] = std::move(r);
  }
  if (job && share.gather) job->barrier();  // every fold done (a process that failed has ended the job)
  if (rank != 0 || !share.gather) {
    for (auto& r : trained)
      if (r && !data_parallel) summary.folds.push_back(std::move(*r));
    summary.partial = true;
    summary.data = std::move(data);
    summary.config = cfg;
    summary.positive = positive;
    return summary;
  }
  for (int k = 0; k < cfg.folds; ++k) {
    const std::string result_path = fold_dir(run_dir, k) + "/result.json";
    FoldResult r;
    if (trained[static_cast<std::size_t>(k)]) {
      r = std::move(*trained[static_cast<std::size_t>(k)]);
    } else {
      LN_CHECK(fs::exists(result_path), result_path, ": missing after every process finished its folds");
      std::ifstream in(result_path);
      const json j = json::parse(in, nullptr, false);
      LN_CHECK(!j.is_discarded(), result_path, ": damaged; delete it to retrain the fold");
      r.fold = k;  // its folder says which; result.json's "fold" (1-based) is for readers
      r.test_indices = j.at("test_indices").get<std::vector<std::int64_t>>();
      r.test_probs = j.at("test_probs").get<std::vector<std::vector<double>>>();
      r.best_epoch = j.at("best_epoch");
      r.epochs_run = j.at("epochs_run");
      r.seconds = j.at("seconds");
      std::vector<int> labels;
      for (std::int64_t i : r.test_indices) labels.push_back(data.labels[i]);
      r.metrics = compute_metrics(r.test_probs, labels, positive);
      progress.line(str_cat("fold ", k + 1, "/", cfg.folds,
                            mine(k) ? ": already done" : str_cat(": trained by process ", owner(k))));
    }
    summary.folds.push_back(std::move(r));
  }
  std::vector<std::vector<double>> all_probs;
  std::vector<int> all_labels;
  for (const auto& f : summary.folds)
    for (std::size_t i = 0; i < f.test_indices.size(); ++i) {
      all_probs.push_back(f.test_probs[i]);
      all_labels.push_back(data.labels[f.test_indices[i]]);
    }
  summary.pooled = compute_metrics(all_probs, all_labels, positive);
  summary.calibration = calibrate(summary.folds, data.labels);
  write_results(run_dir, data, summary.folds, summary.pooled, positive, "", &summary.calibration);
  // Every fold model carries the temperature (a resumed run that rewrote nothing finds it there already).
  const Calibration& cal = summary.calibration;
  const std::string note =
      cal.applied ? str_cat("temperature scaling fitted on the ", cal.n, " out-of-fold predictions of run ",
                            fs::path(run_dir).filename().string(), " (expected calibration error ",
                            str_fixed(cal.ece_before, 3), " -> ", str_fixed(cal.ece_after, 3), ", cross-fitted)")
                  : str_cat("none: the temperature fitted on the out-of-fold predictions of run ",
                            fs::path(run_dir).filename().string(), " did not lower the cross-fitted log loss");
  for (int k = 0; k < cfg.folds; ++k) {
    const std::string best = fold_dir(run_dir, k) + "/best.h5";
    if (!fs::exists(best)) continue;
    std::optional<ModelUsage> u = read_model_usage(best);
    if (!u || (u->temperature == summary.calibration.temperature && u->calibration == note)) continue;
    u->temperature = summary.calibration.temperature;
    u->calibration = note;
    rewrite_model_usage(best, *u);
  }
  if (cfg.final_model)
    train_final_model(cfg, data, summary, run_dir, note, dev, dtype, positive, progress, hooks, clock);
  summary.data = std::move(data);
  summary.config = cfg;
  summary.positive = positive;
  return summary;
}

std::string repeat_dir(const std::string& run_dir, int r) { return run_dir + "/repeat_" + std::to_string(r + 1); }

std::vector<RunSummary> run_repeats(const TrainConfig& cfg, const std::string& run_dir, Progress& progress,
                                    const TrainHooks& hooks, std::optional<data::Dataset> preloaded, dist::Comm* job) {
  const int rank = job ? job->rank() : 0, ranks = job ? job->size() : 1;
  check_job_size(cfg, ranks);
  data::Dataset data =
      preloaded ? std::move(*preloaded)
                : data::load_dataset(cfg.data, data::ManifestOptions{cfg.window, 32768.f, cfg.model.class_names});
  // Each repeat is a run directory of its own, with its seed; process 0 writes their config.yaml (or, resumed,
  // finds them as they were).
  std::vector<TrainConfig> cfgs;
  for (int r = 0; r < cfg.repeats; ++r) {
    TrainConfig c = cfg;
    c.repeats = 1;
    c.seed = cfg.seed + static_cast<std::uint64_t>(r);
    const std::string dir = repeat_dir(run_dir, r), yaml = dir + "/config.yaml";
    if (rank == 0) {
      fs::create_directories(dir);
      remove_stale_temporaries(dir, progress);  // before any process starts writing there
      if (fs::exists(yaml)) {
        TrainConfig saved = load_train_config(yaml);
        saved.device = c.device;  // what a resume may change
        saved.loader_threads = c.loader_threads;
        saved.parallel = c.parallel;
        LN_CHECK(saved.to_yaml() == c.to_yaml(), yaml, ": differs from the run's config.yaml with seed ", c.seed,
                 " (was it edited?)");
      } else {
        io::write_text_file_atomically(yaml, c.to_yaml());
      }
    }
    cfgs.push_back(c);
  }
  if (job) job->barrier();
  // Every process trains its (repeat, fold) pairs, all repeats through; then process 0 gathers each repeat.
  for (int r = 0; r < cfg.repeats; ++r) {
    progress.line(str_cat("repeat ", r + 1, "/", cfg.repeats, " (seed ", cfgs[static_cast<std::size_t>(r)].seed,
                          "): ", repeat_dir(run_dir, r)));
    run_training(cfgs[static_cast<std::size_t>(r)], repeat_dir(run_dir, r), progress, hooks, data,
                 JobShare{.job = job, .first_item = r * cfg.folds, .gather = false});
  }
  if (job) job->barrier();  // every fold of every repeat done
  std::vector<RunSummary> out;
  if (rank != 0) return out;
  for (int r = 0; r < cfg.repeats; ++r)
    out.push_back(
        run_training(cfgs[static_cast<std::size_t>(r)], repeat_dir(run_dir, r), progress, hooks, data, JobShare{}));
  // RUN/repeats.json: each repeat's pooled out-of-fold metrics, and their mean and (sample) standard deviation.
  const auto metric_json = [](const Metrics& m) {
    json mj(m.as_map());
    mj["n"] = m.n;
    return mj;
  };
  json j;
  j["repeats"] = json::array();
  std::vector<Metrics> pooled;
  for (int r = 0; r < cfg.repeats; ++r) {
    const Metrics& m = out[static_cast<std::size_t>(r)].pooled;
    j["repeats"].push_back({{"repeat", r + 1},
                            {"seed", cfgs[static_cast<std::size_t>(r)].seed},
                            {"run", fs::path(repeat_dir(run_dir, r)).filename().string()},
                            {"pooled", metric_json(m)}});
    pooled.push_back(m);
  }
  std::string line = str_cat(cfg.repeats, " repeats of the ", cfg.folds, "-fold cross-validation (mean +- sd):");
  for (const auto& [k, v] : mean_std(pooled)) {  // as metrics.json's over folds
    const auto [mean, sd] = v;
    j["mean"][k] = mean;
    j["std"][k] = sd;
    line += str_cat(" ", k, " ", str_fixed(mean, 3), " +- ", str_fixed(sd, 3));
  }
  io::write_text_file_atomically(run_dir + "/repeats.json", j.dump(2) + "\n");
  progress.line(line);
  return out;
}

}  // namespace livernet::train
