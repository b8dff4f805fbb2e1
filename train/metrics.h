// Classification metrics: accuracy, precision, recall (sensitivity), specificity, F1 and ROC AUC for a
// positive class (one-vs-rest), the confusion matrix; their mean and standard deviation over folds.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace livernet::train {

struct Metrics {
  int n = 0;
  double accuracy = 0, precision = 0, recall = 0, specificity = 0, f1 = 0, auc = 0;
  std::vector<std::vector<int>> confusion;  // [true][predicted]
  std::map<std::string, double> as_map() const;
};

// probs: [n][K]; labels in [0, K); the predicted class is the argmax; `positive` is the class whose
// precision / recall / F1 / AUC are reported (binary: the malignant class).
Metrics compute_metrics(const std::vector<std::vector<double>>& probs, const std::vector<int>& labels, int positive);

// Area under the ROC curve of scores for label == 1, with ties counted as 1/2 (Mann-Whitney U).
// NaN when one class is absent.
double roc_auc(const std::vector<double>& scores, const std::vector<int>& binary_labels);
// The ROC curve's points (FPR, TPR), from (0, 0) to (1, 1), one per distinct threshold.
std::vector<std::pair<double, double>> roc_curve(const std::vector<double>& scores, const std::vector<int>& binary_labels);

// mean and sample standard deviation of each named metric across folds.
std::map<std::string, std::pair<double, double>> mean_std(const std::vector<Metrics>& per_fold);

}  // namespace livernet::train
