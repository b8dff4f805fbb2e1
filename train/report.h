// report.html: one self-contained page (inline SVG and data: images, no network) with the metrics table
// (per fold, mean +- std, pooled with 95 % intervals from a patient-level bootstrap), ROC curves per fold
// and pooled, the confusion matrix, training and validation curves per fold, our numbers beside the
// paper's and a trivial rule's (a threshold on the lesion's central mean HU, fitted on each fold's
// training patients), the run's configuration, and a gallery of the most confidently wrong lesions with
// Grad-CAM heat maps.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace livernet::train {

// Mean HU over the central disc (radius 15 % of the patch's smaller side) of every sample.
std::vector<double> central_mean_hu(const data::Dataset& d);

// The trivial rule, cross-validated on the same folds: per fold, the threshold and direction on the central
// mean HU that maximise training accuracy; returns out-of-fold "probabilities" (a logistic of the distance
// to the threshold) in the same layout as the network's FoldResults.
std::vector<FoldResult> trivial_rule(const data::Dataset& d, const std::vector<FoldResult>& folds, int positive);

struct ReportInputs {
  std::string run_dir;
  std::string title = "livernet run";
  const TrainConfig* config = nullptr;
  const data::Dataset* data = nullptr;
  std::vector<FoldResult> folds;
  Metrics pooled;
  int positive = 1;
  bool training_curves = true;   // read fold_K/history.csv
  int gallery = 8;               // most confidently wrong lesions shown (0 = none)
  std::vector<std::string> fold_weights;  // best.h5 per fold, for Grad-CAM
  const Calibration* calibration = nullptr;  // the run's: a reliability diagram before and after
};

// Writes run_dir/report.html atomically and returns its path.
std::string write_report(const ReportInputs& in);

}  // namespace livernet::train
