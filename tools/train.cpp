// tools/train: patient-level k-fold cross-validation of the paper's model on a dataset of CT lesion
// patches, with metrics, out-of-fold predictions and checkpoints in a run directory.
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>

#include "dist/comm.h"
#include "io/hdf5.h"
#include "io/md5.h"
#include "models/weights.h"
#include "tools/cli.h"
#include "train/report.h"
#include "train/run_lock.h"
#include "train/trainer.h"

using namespace livernet;
namespace fs = std::filesystem;

namespace {
void on_signal(int sig) {
  if (train::interrupt_flag().exchange(true)) {  // second signal: stop now
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

// What a bad input can make training refuse is checked before the run directory is created or anything
// is printed, so the refusal is one line and leaves nothing behind: the data (loaded, every class present,
// enough patients for the folds), the device, the initial weights and, on --resume, the checkpoints.
// Returns the loaded dataset (training uses it as is).
data::Dataset check_inputs(const train::TrainConfig& cfg, const std::string& resume_dir) {
  data::Dataset data = data::load_dataset(cfg.data, data::ManifestOptions{cfg.window, 32768.f, cfg.model.class_names});
  LN_CHECK(data.num_classes() >= 2, cfg.data, ": needs at least two classes");
  (void)train::positive_class_index(cfg, data.class_names);
  (void)train::make_folds(data, cfg.folds, cfg.val_fraction, cfg.seed);
  (void)resolve_device(cfg.device);
  if (!cfg.weights.empty()) (void)train::check_initial_weights(cfg.weights, cfg.model);
  if (resume_dir.empty()) return data;
  std::vector<std::string> runs{resume_dir};
  if (cfg.repeats > 1) {
    runs.clear();
    for (int r = 0; r < cfg.repeats; ++r) runs.push_back(train::repeat_dir(resume_dir, r));
  }
  for (const std::string& run : runs) {
    train::check_fold_numbering(run);
    for (int k = 0; k < cfg.folds; ++k) {
      const std::string ckpt = train::fold_dir(run, k) + "/checkpoint.h5";
      if (!fs::exists(ckpt)) continue;
      const io::H5File f = io::H5File::open(ckpt);
      LN_CHECK(f.has_attr("/", "format") && f.read_string_attr("/", "format") == io::kCheckpointFormat, ckpt,
               ": not a training checkpoint (delete it to restart the fold)");
    }
  }
  return data;
}
// Runs `fn` on every process of `job` and, when it failed on any, throws on every process the first failure
// (so each prints one line and exits 1, rather than leaving the others waiting).
void agree(dist::Comm& job, const std::function<void()>& fn) {
  std::string error;
  try {
    fn();
  } catch (const std::exception& e) {
    if (job.size() == 1) throw;
    error = e.what();
  }
  if (job.size() == 1) return;
  const std::vector<std::string> all = job.all_gather(error);
  for (int r = 0; r < job.size(); ++r)
    if (!all[static_cast<std::size_t>(r)].empty())
      throw Error(r == 0 ? all[0] : str_cat("process ", r, ": ", all[static_cast<std::size_t>(r)]));
}

// Every process of a job must train the same configuration on the same data: a digest of the resolved
// configuration (but its device and loader threads) and of the data file's bytes, compared with process 0's.
void check_same_inputs(dist::Comm& job, train::TrainConfig cfg) {
  cfg.device.clear();  // may differ: one GPU per process
  cfg.loader_threads = 0;
  const std::string mine = io::md5_bytes(cfg.to_yaml()) + " " + io::md5_file(cfg.data);
  const std::vector<std::string> all = job.all_gather(mine);
  for (int r = 1; r < job.size(); ++r) {
    const std::string& theirs = all[static_cast<std::size_t>(r)];
    LN_CHECK(theirs == all[0], "process ", r, " has ",
             theirs.substr(0, 32) != all[0].substr(0, 32) ? "another configuration" : "another data file",
             " than process 0 (", theirs.substr(0, 32) != all[0].substr(0, 32) ? "config.yaml" : cfg.data,
             " differs): every process of a job must see the same run directory and data");
  }
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Trains the liver-lesion classifier with patient-level k-fold cross-validation and reports its metrics.\n"
               "Results go to a run directory: config.yaml, splits.json, fold_K/{best.h5, checkpoint.h5, history.csv},\n"
               "metrics.json, predictions.csv, log.txt. Ctrl-C writes a checkpoint; --resume continues.",
               "train");
  std::string config_path, data, weights, name, runs_dir = "runs", output, device, resume, precision;
  int epochs = 0, batch = 0, folds = 0, size = 0, threads = 0;
  float lr = 0;
  std::int64_t seed = -1;
  bool force = false, augment = false, no_augment = false, final_model = false;
  app.add_option("--config,-c", config_path, "YAML configuration (configs/paper.yaml, configs/demo_cpu.yaml)");
  app.add_option("--data,-d", data, "dataset .h5 or manifest .csv (data.path)");
  app.add_option("--weights,-w", weights, "ImageNet weights from tools/convert_weights (model.weights)");
  app.add_option("--name,-n", name, "run name: the run goes to RUNS_DIR/NAME (default: a timestamp)");
  app.add_option("--runs-dir", runs_dir, "where runs are created")->capture_default_str();
  app.add_option("--output,-o", output, "the run directory itself (instead of RUNS_DIR/NAME)");
  app.add_option("--epochs", epochs, "train.epochs")->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "train.batch_size")->check(CLI::Range(2, 4096));
  app.add_option("--lr", lr, "train.lr")->check(CLI::PositiveNumber);
  app.add_option("--folds", folds, "cv.folds")->check(CLI::Range(2, 50));
  app.add_option("--size", size, "data.input_size (>= 75)")->check(CLI::Range(75, 1024));
  app.add_option("--seed", seed, "cv.seed");
  app.add_option("--device", device, "runtime.device: auto, cpu, cuda or cuda:N");
  app.add_option("--precision", precision, "runtime.precision: auto, f32, bf16, f16");
  app.add_option("--loader-threads", threads, "runtime.loader_threads")->check(CLI::Range(1, 64));
  std::string parallel;
  app.add_option("--parallel", parallel,
                 "runtime.parallel, under mpirun/srun: folds (each process trains whole folds) or data (every "
                 "process trains every fold on its share of each batch)");
  app.add_flag("--augment", augment, "data.augment.enabled = true");
  app.add_flag("--no-augment", no_augment, "data.augment.enabled = false");
  app.add_flag("--force", force, "replace an existing run directory");
  app.add_flag("--final", final_model,
               "cv.final = true: after the cross-validation, train one model on every patient "
               "for the median of the folds' best epochs (RUN/final/model.h5); with --resume, adds it to a run");
  int repeats = 0;
  app.add_option("--repeats", repeats,
                 "cv.repeats: the cross-validation repeated with seeds seed, seed + 1, ... (RUN/repeat_R, and "
                 "RUN/repeats.json with the metrics' mean and standard deviation)")
      ->check(CLI::Range(1, 100));
  app.add_option("--resume", resume, "continue an interrupted run (its directory)");
  return tools::run(app, argc, argv, [&]() -> int {
    // Started by mpirun or srun (a build with MPI), the processes of the job share the folds out
    // (docs/distributed.md); process 0 prepares the run directory and the others take its configuration.
    dist::Comm& job = dist::world();
    const bool multi = job.size() > 1;
    train::TrainConfig cfg;
    std::string run_dir;
    std::optional<train::RunLock> lock;  // held by process 0 until it ends
    data::Dataset dataset;
    agree(job, [&] {
      if (job.rank() != 0) return;
      if (!resume.empty()) {
        LN_CHECK(config_path.empty() && data.empty() && weights.empty(),
                 "--resume takes the run's own configuration; only "
                 "--device, --loader-threads, --parallel may change");
        LN_CHECK(fs::is_directory(resume), resume, ": no such run directory");
        lock.emplace(resume);
        LN_CHECK(fs::exists(resume + "/config.yaml"), resume,
                 ": no config.yaml: the run was stopped before it started; start it "
                 "again (with --force to replace the directory)");
        cfg = train::load_train_config(resume + "/config.yaml");
        run_dir = resume;
        if (final_model) cfg.final_model = true;  // kept in the run's configuration, for later resumes
      } else {
        if (!config_path.empty()) cfg = train::load_train_config(config_path);
        if (!data.empty()) cfg.data = data;
        if (!weights.empty()) cfg.weights = weights;
        if (epochs) cfg.epochs = epochs;
        if (batch) cfg.batch_size = batch;
        if (lr > 0) cfg.lr = lr;
        if (folds) cfg.folds = folds;
        if (size) cfg.model.input_size = size;
        if (seed >= 0) cfg.seed = static_cast<std::uint64_t>(seed);
        if (!precision.empty()) cfg.precision = parse_choice<train::Precision>("--precision", precision);
        if (final_model) cfg.final_model = true;
        if (repeats) cfg.repeats = repeats;
        if (augment) cfg.augment.enabled = true;
        if (no_augment) cfg.augment.enabled = false;
        if (!output.empty()) {
          run_dir = output;
        } else {
          if (name.empty()) {
            char buf[32];
            const std::time_t t = std::time(nullptr);
            std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&t));
            name = buf;
          }
          run_dir = (fs::path(runs_dir) / name).string();
        }
      }
      if (!device.empty()) cfg.device = device;
      if (threads) cfg.loader_threads = threads;
      if (!parallel.empty()) cfg.parallel = parse_choice<train::Parallel>("--parallel", parallel);
      cfg.validate(!resume.empty()       ? resume + "/config.yaml"
                   : config_path.empty() ? std::string("config")
                                         : config_path);
      if (resume.empty() && fs::exists(run_dir)) {
        LN_CHECK(force, run_dir, ": the run directory exists; use --resume ", run_dir,
                 " to continue it or --force to replace it");
        LN_CHECK(fs::is_directory(run_dir), run_dir, ": exists and is not a directory");
        lock.emplace(run_dir);  // --force on a run in use is refused
      }
      train::check_job_size(cfg, job.size());
      dataset = check_inputs(cfg, resume);  // before --force removes anything
    });
    if (multi) {
      // The others take process 0's configuration and run directory, and check their data against its.
      run_dir = job.broadcast(run_dir, 0);
      const std::string yaml = job.broadcast(cfg.to_yaml(), 0);
      agree(job, [&] {
        if (job.rank() == 0) return;
        cfg = train::parse_train_config(yaml, run_dir + "/config.yaml");
        if (!device.empty()) cfg.device = device;
        if (threads) cfg.loader_threads = threads;
        dataset = check_inputs(cfg, resume.empty() ? std::string() : run_dir);
      });
      agree(job, [&] { check_same_inputs(job, cfg); });
    }
    // Only now, with every process ready, is the run directory written.
    agree(job, [&] {
      if (job.rank() != 0) return;
      if (resume.empty()) {
        if (fs::exists(run_dir)) {  // everything but the lock, which this process holds
          for (const auto& e : fs::directory_iterator(run_dir))
            if (e.path().filename() != train::RunLock::kFile) fs::remove_all(e.path());
        }
        fs::create_directories(run_dir);
        if (!lock) lock.emplace(run_dir);
        io::write_text_file_atomically(run_dir + "/config.yaml", cfg.to_yaml());
      } else if (cfg.final_model && !train::load_train_config(run_dir + "/config.yaml").final_model) {
        io::write_text_file_atomically(run_dir + "/config.yaml", cfg.to_yaml());
      }
    });
    if (multi) {
      job.barrier();
      if (cfg.device == "auto" && cuda_device_count() > 1)  // one GPU per process of a node
        cfg.device = str_cat("cuda:", dist::local_rank() % cuda_device_count());
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    train::Progress progress(job.rank() == 0 ? run_dir + "/log.txt"
                                             : str_cat(run_dir, "/log.process", job.rank(), ".txt"));
    if (job.rank() != 0) progress.set_prefix(str_cat("process ", job.rank(), ": "));
    progress.line(
        str_cat(resume.empty() ? "run " : "resuming run ", run_dir, multi ? " (" + job.describe() + ")" : ""));
    // A finished run's table, report and paths (for each repeat, with cv.repeats).
    const auto finish = [&](const train::RunSummary& s) {
      const std::string& dir = s.run_dir;
      progress.line("\n" + train::metrics_table(s.folds, s.pooled, train::per_source_metrics(s.data, s.folds, s.positive)));
      progress.line("paper (Perdigon Romero et al. 2019, 230 lesions / 63 patients): accuracy 0.96, F1 0.92");
      progress.line(train::calibration_summary(s.calibration));
      train::ReportInputs r;
      r.run_dir = dir;
      r.title = "livernet cross-validation: " + fs::path(dir).filename().string();
      r.config = &s.config;
      r.data = &s.data;
      r.folds = s.folds;
      r.pooled = s.pooled;
      r.positive = s.positive;
      r.calibration = &s.calibration;
      for (int k = 0; k < s.config.folds; ++k) r.fold_weights.push_back(train::fold_dir(dir, k) + "/best.h5");
      const std::string report = train::write_report(r);
      progress.line(str_cat("results: ", dir, "/metrics.json, ", dir, "/predictions.csv"));
      progress.line(str_cat("report:  ", report));
      if (!s.final_model.empty())
        progress.line(str_cat("final:   ", s.final_model, " (", s.final_epochs,
                              " epochs on every patient; tools/predict -w it)"));
    };
    try {
      if (cfg.repeats > 1) {
        const std::vector<train::RunSummary> all =
            train::run_repeats(cfg, run_dir, progress, {}, std::move(dataset), multi ? &job : nullptr);
        if (job.rank() != 0) {
          progress.line("trained this process's folds; process 0 writes the results");
          return 0;
        }
        for (const auto& s : all) finish(s);
        progress.line(str_cat("repeats: ", run_dir, "/repeats.json"));
        return 0;
      }
      const train::RunSummary s =
          train::run_training(cfg, run_dir, progress, {}, std::move(dataset), multi ? &job : nullptr);
      if (s.partial) {
        std::string done;
        for (const auto& f : s.folds) done += (done.empty() ? "" : ", ") + std::to_string(f.fold + 1);
        progress.line(str_cat("trained fold(s) ", done.empty() ? std::string("none (already done)") : done,
                              "; process 0 writes the results"));
        return 0;
      }
      finish(s);
    } catch (const train::Interrupted& e) {
      progress.line(e.what());
      return 130;
    } catch (const std::exception& e) {
      if (!multi) throw;
      // The others may be waiting for this process: its error ends the whole job.
      std::fprintf(stderr, "train: process %d: %s\n", job.rank(), escape_control(e.what()).c_str());
      std::fflush(stderr);
      job.abort(1);
    }
    return 0;
  });
}
