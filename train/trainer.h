// The training protocol behind tools/train: patient-level k-fold cross-validation; in each fold,
// training with early stopping / LR schedule on an inner patient-level validation split, the best
// checkpoint by the monitored value, then predictions on the fold's test patients. Everything is saved
// in the run directory; an interrupted run resumes from its last checkpoint and, on the CPU, finishes
// with exactly the results of an uninterrupted one.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "models/inception_v3.h"
#include "models/weights.h"
#include "train/calibration.h"
#include "train/cv.h"
#include "train/metrics.h"
#include "train/progress.h"
#include "train/train_config.h"

namespace livernet::dist {
class Comm;
}

namespace livernet::train {

// Set from a signal handler: the training loop checkpoints at the next step and stops.
std::atomic<bool>& interrupt_flag();

class Interrupted : public Error {
 public:
  using Error::Error;
};

struct FoldResult {
  int fold = 0;
  std::vector<std::int64_t> test_indices;
  std::vector<std::vector<double>> test_probs;
  Metrics metrics;
  int best_epoch = 0, epochs_run = 0;
  double seconds = 0;
};

struct RunSummary {
  std::vector<FoldResult> folds;
  Metrics pooled;
  Calibration calibration;  // of the out-of-fold predictions; its temperature is in every fold's best.h5
  std::string run_dir;
  data::Dataset data;     // as loaded
  TrainConfig config;   // resolved (class names filled in)
  int positive = 1;
  // A process other than rank 0 of a multi-process job: `folds` holds only the folds it trained; there are no
  // pooled metrics, calibration or results (rank 0 makes them).
  bool partial = false;
  // cv.final: RUN/final/model.h5 and the epochs it was trained for (else empty and 0).
  std::string final_model;
  int final_epochs = 0;
};

// The folder of fold k (0-based in code) in a run directory: RUN/fold_<k+1>. Folds are numbered from 1
// everywhere a user sees them (folders, predictions.csv, metrics.json, splits.json, result.json, --fold).
std::string fold_dir(const std::string& run_dir, int k);
// RUN/fold_<k+1>/best.h5, after checking it is there (else Error naming it and how to finish the run).
std::string fold_model(const std::string& run_dir, int k);
// The folder of the final model (cv.final): RUN/final, holding model.h5.
std::string final_dir(const std::string& run_dir);
// The final model's epoch count: the median of the folds' best epochs (1-based), of two middle values their
// mean rounded up.
int final_epochs(const std::vector<FoldResult>& folds);
// Refuses, with one line saying what to rename, a run directory written before folds were numbered from 1
// (it has RUN/fold_0): resuming or evaluating it would take fold 1's files for fold 2's.
void check_fold_numbering(const std::string& run_dir);

// Class index of the positive class for the binary metrics.
int positive_class_index(const TrainConfig& cfg, const std::vector<std::string>& class_names);

// Loads initial (ImageNet) weights into `model`'s backbone, strictly: every backbone tensor must be in
// the file with its shape and the file may hold no backbone tensor the model lacks, except the residual
// shortcuts (".shortcut.": not part of ImageNet InceptionV3; they keep model.residual_init). The head is
// not loaded. Weights of the other network flavour are refused first: Keras weights in a torchvision-flavour
// model (or the reverse) would lose or invent the batch norms' scales and change the pools without any error
// from loading. The report lists what was loaded, skipped and left as initialised.
io::LoadReport load_initial_weights(LesionClassifier& model, const std::string& path);
// The configuration of the initial weight file `path`, after checking everything load_initial_weights
// checks (by loading it into a fresh `model`), so tools/train can refuse the file before it starts.
ModelConfig check_initial_weights(const std::string& path, const ModelConfig& model);

// Observers of the training loop (progress displays, tests).
struct TrainHooks {
  // After every optimizer step: fold (0-based) and global step (1-based count in the fold).
  std::function<void(int fold, std::int64_t step)> on_step;
};

// Runs (or resumes) the whole protocol in run_dir (which must exist and hold config.yaml). `data`: the
// dataset cfg.data names, when the caller has loaded it already (else it is loaded here).
// `job`, when given, is a job of several processes (dist/comm.h: mpirun) that share out the folds: process r
// trains folds r, r + size, ...; then process 0 gathers every fold (as a resumed run does) and writes the
// results, the calibration and cv.final's model exactly as one process would; the others return a partial
// summary. Every process must be given the same configuration and data.
RunSummary run_training(const TrainConfig& cfg, const std::string& run_dir, Progress& progress,
                        const TrainHooks& hooks = {}, std::optional<data::Dataset> data = std::nullopt,
                        dist::Comm* job = nullptr);

// Refuses (Error, one line) a job of `processes` processes that cannot share out cfg's work: with runtime.parallel
// data a batch that does not split evenly over them; otherwise more processes than folds (x repeats).
void check_job_size(const TrainConfig& cfg, int processes);

// Which folds of a run a process of a job trains when the job's work spans several runs (cv.repeats): the
// run's folds are the job's work items first_item .. first_item + folds - 1, and item i goes to process
// i % size (runtime.parallel: folds; with data, every process trains every fold). With gather = false the
// process only trains its folds and returns (no waiting for the others, no results): the caller waits, then
// process 0 runs the run again alone, which finds every fold done and writes the results.
struct JobShare {
  dist::Comm* job = nullptr;
  int first_item = 0;
  bool gather = true;
};
RunSummary run_training(const TrainConfig& cfg, const std::string& run_dir, Progress& progress, const TrainHooks& hooks,
                        std::optional<data::Dataset> data, const JobShare& share);

// cv.repeats > 1: the cross-validation repeated with seeds cv.seed, cv.seed + 1, ... (other splits, other
// initial heads and data orders), each repeat an ordinary run directory RUN/repeat_<r> (its config.yaml has
// its seed and repeats 1: tools/evaluate, export and predict take it as any run). A job's processes share
// out every (repeat, fold) pair; process 0 then writes each repeat's results and RUN/repeats.json, the
// repeats' pooled metrics with their mean and standard deviation. Returns every repeat's summary (empty on
// the other processes).
std::string repeat_dir(const std::string& run_dir, int r);
std::vector<RunSummary> run_repeats(const TrainConfig& cfg, const std::string& run_dir, Progress& progress,
                                    const TrainHooks& hooks = {}, std::optional<data::Dataset> data = std::nullopt,
                                    dist::Comm* job = nullptr);

// Model input tensors for samples (no augmentation): [n, size, size, 1] on the CPU.
Tensor make_inputs(const data::Dataset& d, const std::vector<std::int64_t>& indices, const TrainConfig& cfg);
// Softmax probabilities of `model` (eval mode) for the samples, batch by batch on `device`.
std::vector<std::vector<double>> predict_probs(LesionClassifier& model, const data::Dataset& d,
                                               const std::vector<std::int64_t>& indices, const TrainConfig& cfg,
                                               Device device, int batch);

// Writes metrics.json and predictions.csv for a finished run (also used by tools/evaluate); with
// `calibration`, metrics.json says how it went ("calibration"). predictions.csv holds the network's own
// (uncalibrated) probabilities.
void write_results(const std::string& dir, const data::Dataset& d, const std::vector<FoldResult>& folds,
                   const Metrics& pooled, int positive, const std::string& extra_json_key = "",
                   const Calibration* calibration = nullptr);
// One line: the temperature and what it did to the expected calibration error and the log-likelihood.
std::string calibration_summary(const Calibration& c);
// Out-of-fold metrics per source (data::source_name of each sample's `sources` entry), in order of first
// appearance; empty when the dataset records no sources. What a source cannot define is NaN (null in
// metrics.json): specificity without lesions of the other classes, recall without positives, AUC without both.
std::vector<std::pair<std::string, Metrics>> per_source_metrics(const data::Dataset& d, const std::vector<FoldResult>& folds,
                                                                int positive);
// A fixed-width table of per-fold, mean +- std and pooled metrics, then per source when there are several.
std::string metrics_table(const std::vector<FoldResult>& folds, const Metrics& pooled,
                          const std::vector<std::pair<std::string, Metrics>>& per_source = {});

}  // namespace livernet::train
