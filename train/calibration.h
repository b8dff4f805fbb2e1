// Calibration of a run's probabilities by temperature scaling (Guo et al., "On Calibration of Modern
// Neural Networks", ICML 2017): p_T = softmax(z / T) for logits z, one T > 0 for the whole model. T is
// fitted by minimising the negative log-likelihood of the cross-validation's out-of-fold predictions, so
// no patient the model was trained on takes part. It changes no predicted class and no AUC, only how far
// the probabilities can be trusted as probabilities.
//
// How well calibrated: the expected calibration error (ECE) over equal-width bins of confidence (the top
// class's probability): sum over bins of |bin| / n * |accuracy(bin) - mean confidence(bin)|. Reported
// before and after; the "after" value is cross-fitted (each fold's predictions scaled by the T fitted on
// the other folds), so it is not measured on the data its own T was fitted to; when that does not lower the
// log loss, the temperature is not applied (it stays 1) and the run says so.
#pragma once

#include <vector>

namespace livernet::train {

struct FoldResult;

// p^(1/T), renormalised: softmax(z / T) for probabilities p = softmax(z) (a probability of 0, from an
// underflowed softmax, is taken as float's smallest: log p >= -103.3).
std::vector<double> apply_temperature(const std::vector<double>& probs, double temperature);
// The T in [0.05, 20] that minimises the mean negative log-likelihood of labels under apply_temperature
// (the likelihood is log-concave in 1/T, so a golden-section search finds the minimum); 1 with no samples.
double fit_temperature(const std::vector<std::vector<double>>& probs, const std::vector<int>& labels);
double mean_nll(const std::vector<std::vector<double>>& probs, const std::vector<int>& labels, double temperature = 1);

struct ReliabilityBin {
  double lo = 0, hi = 0;           // confidence range [lo, hi)
  int n = 0;                       // samples whose confidence falls in it
  double confidence = 0, accuracy = 0;  // their mean confidence and the fraction predicted right (0 when n = 0)
};
std::vector<ReliabilityBin> reliability_bins(const std::vector<std::vector<double>>& probs, const std::vector<int>& labels,
                                             int bins = 15);
// NaN with no samples.
double expected_calibration_error(const std::vector<std::vector<double>>& probs, const std::vector<int>& labels,
                                  int bins = 15);

struct Calibration {
  double fitted = 1;        // the temperature fitted on all out-of-fold predictions
  // What the fold models use: `fitted` when the cross-fitted log loss shows it helps (nll_after < nll_before),
  // else 1 (a temperature that does not carry over to unseen folds is not applied).
  double temperature = 1;
  bool applied = false;
  int bins = 15;
  int n = 0;                // out-of-fold predictions
  double ece_before = 0, ece_after = 0;  // after: cross-fitted
  double nll_before = 0, nll_after = 0;  // after: cross-fitted
  std::vector<double> fold_temperatures;  // fold k: T fitted on the other folds (what its predictions got)
  std::vector<ReliabilityBin> before, after;
};
// labels: the dataset's label of every sample index (FoldResult::test_indices index it).
Calibration calibrate(const std::vector<FoldResult>& folds, const std::vector<int>& labels, int bins = 15);

}  // namespace livernet::train
