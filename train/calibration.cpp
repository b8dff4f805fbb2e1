#include "train/calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "train/trainer.h"

namespace livernet::train {

namespace {
// log p, with an underflowed 0 taken as float's smallest positive value (what a float softmax can give).
double safe_log(double p) { return std::log(std::max(p, static_cast<double>(std::numeric_limits<float>::denorm_min()))); }

std::size_t argmax(const std::vector<double>& p) {
  return static_cast<std::size_t>(std::max_element(p.begin(), p.end()) - p.begin());
}
}  // namespace

std::vector<double> apply_temperature(const std::vector<double>& probs, double temperature) {
  LN_CHECK(temperature > 0 && std::isfinite(temperature), "temperature must be positive and finite, got ", temperature);
  std::vector<double> z(probs.size());
  double mx = -std::numeric_limits<double>::infinity();
  for (std::size_t k = 0; k < probs.size(); ++k) {
    z[k] = safe_log(probs[k]) / temperature;
    mx = std::max(mx, z[k]);
  }
  double s = 0;
  for (double& v : z) s += (v = std::exp(v - mx));
  for (double& v : z) v /= s;
  return z;
}

double mean_nll(const std::vector<std::vector<double>>& probs, const std::vector<int>& labels, double temperature) {
  LN_CHECK(probs.size() == labels.size(), "mean_nll: ", probs.size(), " predictions for ", labels.size(), " labels");
  if (probs.empty()) return std::numeric_limits<double>::quiet_NaN();
  double s = 0;
  for (std::size_t i = 0; i < probs.size(); ++i) {
    // -log softmax(log p / T)[y], in log-sum-exp form
    double mx = -std::numeric_limits<double>::infinity();
    for (double p : probs[i]) mx = std::max(mx, safe_log(p) / temperature);
    double sum = 0;
    for (double p : probs[i]) sum += std::exp(safe_log(p) / temperature - mx);
    s += mx + std::log(sum) - safe_log(probs[i][static_cast<std::size_t>(labels[i])]) / temperature;
  }
  return s / static_cast<double>(probs.size());
}

double fit_temperature(const std::vector<std::vector<double>>& probs, const std::vector<int>& labels) {
  if (probs.empty()) return 1;
  // Golden-section search over beta = 1 / T in [1/20, 1/0.05]: the NLL of softmax(beta * log p) is convex in beta.
  const double phi = (std::sqrt(5.0) - 1) / 2;
  double a = 1.0 / 20, b = 1.0 / 0.05;
  double c = b - phi * (b - a), d = a + phi * (b - a);
  double fc = mean_nll(probs, labels, 1 / c), fd = mean_nll(probs, labels, 1 / d);
  for (int it = 0; it < 200 && b - a > 1e-10; ++it) {
    if (fc <= fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - phi * (b - a);
      fc = mean_nll(probs, labels, 1 / c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + phi * (b - a);
      fd = mean_nll(probs, labels, 1 / d);
    }
  }
  return 2 / (a + b);
}

std::vector<ReliabilityBin> reliability_bins(const std::vector<std::vector<double>>& probs, const std::vector<int>& labels,
                                             int bins) {
  LN_CHECK(bins >= 1, "reliability_bins: at least one bin");
  LN_CHECK(probs.size() == labels.size(), "reliability_bins: ", probs.size(), " predictions for ", labels.size(), " labels");
  std::vector<ReliabilityBin> out(static_cast<std::size_t>(bins));
  for (int b = 0; b < bins; ++b) {
    out[b].lo = static_cast<double>(b) / bins;
    out[b].hi = static_cast<double>(b + 1) / bins;
  }
  for (std::size_t i = 0; i < probs.size(); ++i) {
    const std::size_t k = argmax(probs[i]);
    const double conf = probs[i][k];
    const int b = std::clamp(static_cast<int>(conf * bins), 0, bins - 1);  // confidence 1 goes in the last bin
    out[b].n += 1;
    out[b].confidence += conf;
    out[b].accuracy += static_cast<int>(k) == labels[i] ? 1 : 0;
  }
  for (ReliabilityBin& r : out)
    if (r.n > 0) {
      r.confidence /= r.n;
      r.accuracy /= r.n;
    }
  return out;
}

double expected_calibration_error(const std::vector<std::vector<double>>& probs, const std::vector<int>& labels, int bins) {
  if (probs.empty()) return std::numeric_limits<double>::quiet_NaN();
  double e = 0;
  for (const ReliabilityBin& r : reliability_bins(probs, labels, bins))
    e += static_cast<double>(r.n) / static_cast<double>(probs.size()) * std::fabs(r.accuracy - r.confidence);
  return e;
}

Calibration calibrate(const std::vector<FoldResult>& folds, const std::vector<int>& labels, int bins) {
  Calibration c;
  c.bins = bins;
  std::vector<std::vector<double>> all, scaled;
  std::vector<int> all_labels;
  for (std::size_t k = 0; k < folds.size(); ++k) {
    // T from the other folds only, applied to this fold.
    std::vector<std::vector<double>> others;
    std::vector<int> other_labels;
    for (std::size_t j = 0; j < folds.size(); ++j) {
      if (j == k) continue;
      for (std::size_t i = 0; i < folds[j].test_indices.size(); ++i) {
        others.push_back(folds[j].test_probs[i]);
        other_labels.push_back(labels[static_cast<std::size_t>(folds[j].test_indices[i])]);
      }
    }
    const double t = fit_temperature(others, other_labels);
    c.fold_temperatures.push_back(t);
    for (std::size_t i = 0; i < folds[k].test_indices.size(); ++i) {
      all.push_back(folds[k].test_probs[i]);
      scaled.push_back(apply_temperature(folds[k].test_probs[i], t));
      all_labels.push_back(labels[static_cast<std::size_t>(folds[k].test_indices[i])]);
    }
  }
  c.n = static_cast<int>(all.size());
  c.fitted = fit_temperature(all, all_labels);
  c.ece_before = expected_calibration_error(all, all_labels, bins);
  c.ece_after = expected_calibration_error(scaled, all_labels, bins);
  c.nll_before = mean_nll(all, all_labels);
  c.nll_after = mean_nll(scaled, all_labels);
  c.applied = c.n > 0 && c.nll_after < c.nll_before;
  c.temperature = c.applied ? c.fitted : 1;
  c.before = reliability_bins(all, all_labels, bins);
  c.after = reliability_bins(scaled, all_labels, bins);
  return c;
}

}  // namespace livernet::train
