#include "train/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace livernet::train {

std::map<std::string, double> Metrics::as_map() const {
  return {{"accuracy", accuracy}, {"precision", precision}, {"recall", recall},
          {"specificity", specificity}, {"f1", f1}, {"auc", auc}};
}

double roc_auc(const std::vector<double>& scores, const std::vector<int>& y) {
  LN_CHECK(scores.size() == y.size(), "roc_auc: ", scores.size(), " scores for ", y.size(), " labels");
  std::vector<std::size_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  // Sum of the positives' (average, for ties) ranks.
  double rank_sum = 0;
  std::size_t pos = 0;
  for (std::size_t i = 0; i < idx.size();) {
    std::size_t j = i;
    while (j < idx.size() && scores[idx[j]] == scores[idx[i]]) ++j;
    const double avg_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    for (std::size_t t = i; t < j; ++t)
      if (y[idx[t]] == 1) {
        rank_sum += avg_rank;
        ++pos;
      }
    i = j;
  }
  const std::size_t neg = y.size() - pos;
  if (pos == 0 || neg == 0) return std::nan("");
  return (rank_sum - static_cast<double>(pos) * (pos + 1) / 2.0) / (static_cast<double>(pos) * neg);
}

std::vector<std::pair<double, double>> roc_curve(const std::vector<double>& scores, const std::vector<int>& y) {
  std::vector<std::size_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  const double P = static_cast<double>(std::count(y.begin(), y.end(), 1)), N = static_cast<double>(y.size()) - P;
  std::vector<std::pair<double, double>> pts{{0, 0}};
  double tp = 0, fp = 0;
  for (std::size_t i = 0; i < idx.size();) {
    std::size_t j = i;
    while (j < idx.size() && scores[idx[j]] == scores[idx[i]]) {
      (y[idx[j]] == 1 ? tp : fp) += 1;
      ++j;
    }
    pts.emplace_back(N > 0 ? fp / N : 0, P > 0 ? tp / P : 0);
    i = j;
  }
  return pts;
}

Metrics compute_metrics(const std::vector<std::vector<double>>& probs, const std::vector<int>& labels, int positive) {
  LN_CHECK(probs.size() == labels.size() && !probs.empty(), "metrics: ", probs.size(), " predictions for ",
           labels.size(), " labels");
  const int K = static_cast<int>(probs[0].size());
  LN_CHECK(positive >= 0 && positive < K, "metrics: positive class ", positive, " outside [0, ", K, ")");
  Metrics m;
  m.n = static_cast<int>(labels.size());
  m.confusion.assign(K, std::vector<int>(K, 0));
  std::vector<double> scores;
  std::vector<int> binary;
  int correct = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const int pred = static_cast<int>(std::max_element(probs[i].begin(), probs[i].end()) - probs[i].begin());
    ++m.confusion[labels[i]][pred];
    correct += pred == labels[i];
    scores.push_back(probs[i][positive]);
    binary.push_back(labels[i] == positive);
  }
  double tp = m.confusion[positive][positive], fn = 0, fp = 0, tn = 0;
  for (int t = 0; t < K; ++t)
    for (int p = 0; p < K; ++p) {
      if (t == positive && p != positive) fn += m.confusion[t][p];
      if (t != positive && p == positive) fp += m.confusion[t][p];
      if (t != positive && p != positive) tn += m.confusion[t][p];
    }
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  m.accuracy = static_cast<double>(correct) / m.n;
  m.precision = ratio(tp, tp + fp);
  m.recall = ratio(tp, tp + fn);
  m.specificity = ratio(tn, tn + fp);
  m.f1 = ratio(2 * tp, 2 * tp + fp + fn);
  m.auc = roc_auc(scores, binary);
  return m;
}

std::map<std::string, std::pair<double, double>> mean_std(const std::vector<Metrics>& folds) {
  std::map<std::string, std::pair<double, double>> out;
  if (folds.empty()) return out;
  for (const auto& [name, unused] : folds[0].as_map()) {
    (void)unused;
    std::vector<double> v;
    for (const auto& f : folds) {
      const double x = f.as_map().at(name);
      if (!std::isnan(x)) v.push_back(x);
    }
    double mean = 0, var = 0;
    for (double x : v) mean += x;
    mean = v.empty() ? std::nan("") : mean / v.size();
    for (double x : v) var += (x - mean) * (x - mean);
    out[name] = {mean, v.size() > 1 ? std::sqrt(var / (v.size() - 1)) : 0.0};
  }
  return out;
}

}  // namespace livernet::train
