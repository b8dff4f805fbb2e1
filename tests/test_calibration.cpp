// train/calibration.h: temperature scaling fitted on out-of-fold predictions, the expected calibration
// error, and the rule that a temperature which does not carry over to unseen folds is not applied.
#include <gtest/gtest.h>

#include <cmath>

#include "core/philox.h"
#include "train/calibration.h"
#include "train/trainer.h"

using namespace livernet;
using namespace livernet::train;

namespace {

// n samples of K classes whose logits z are random (scale 3), the labels drawn from softmax(z / t_true),
// the predictions the model's own softmax(z): a model that needs temperature t_true.
void synthetic(int n, int K, double t_true, std::uint64_t seed, std::vector<std::vector<double>>& probs,
               std::vector<int>& labels) {
  for (int i = 0; i < n; ++i) {
    std::vector<double> z(K), p(K), q(K);
    for (int k = 0; k < K; ++k) z[k] = 3.0 * philox_normal_at(seed, 0, static_cast<std::uint64_t>(i * K + k), 0.f, 1.f);
    double s = 0, sq = 0;
    for (int k = 0; k < K; ++k) {
      s += (p[k] = std::exp(z[k]));
      sq += (q[k] = std::exp(z[k] / t_true));
    }
    for (double& v : p) v /= s;
    const double u = philox_uniform_at(seed, 1, static_cast<std::uint64_t>(i), 0.f, 1.f);
    double c = 0;
    int y = K - 1;
    for (int k = 0; k < K; ++k)
      if ((c += q[k] / sq) > u) {
        y = k;
        break;
      }
    probs.push_back(p);
    labels.push_back(y);
  }
}

FoldResult fold_of(int k, const std::vector<std::vector<double>>& probs, std::int64_t first_index) {
  FoldResult f;
  f.fold = k;
  f.test_probs = probs;
  for (std::size_t i = 0; i < probs.size(); ++i) f.test_indices.push_back(first_index + static_cast<std::int64_t>(i));
  return f;
}

}  // namespace

TEST(Calibration, TemperatureKeepsTheClassAndOneChangesNothing) {
  const std::vector<double> p{0.7, 0.2, 0.1};
  const std::vector<double> same = apply_temperature(p, 1);
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(same[k], p[k], 1e-12);
  const std::vector<double> soft = apply_temperature(p, 3), sharp = apply_temperature(p, 0.5);
  EXPECT_LT(soft[0], 0.7);
  EXPECT_GT(sharp[0], 0.7);
  EXPECT_GT(soft[0], soft[1]);
  EXPECT_NEAR(sharp[0], 0.49 / (0.49 + 0.04 + 0.01), 1e-12);  // p^2 renormalised
  // A probability that underflowed to 0 stays finite.
  const std::vector<double> under = apply_temperature({1.0, 0.0}, 2);
  EXPECT_TRUE(std::isfinite(under[1]) && under[1] > 0);
  EXPECT_THROW(apply_temperature(p, 0), Error);
}

TEST(Calibration, FitRecoversTheTemperatureOfSyntheticData) {
  for (double t_true : {0.5, 1.0, 2.5}) {
    std::vector<std::vector<double>> probs;
    std::vector<int> labels;
    synthetic(6000, 3, t_true, 7, probs, labels);
    const double t = fit_temperature(probs, labels);
    EXPECT_NEAR(t, t_true, 0.08 * t_true) << "true temperature " << t_true;
    EXPECT_LE(mean_nll(probs, labels, t), mean_nll(probs, labels, 1) + 1e-12);
    if (t_true != 1.0) {
      std::vector<std::vector<double>> scaled;
      for (const auto& p : probs) scaled.push_back(apply_temperature(p, t));
      EXPECT_LT(expected_calibration_error(scaled, labels), expected_calibration_error(probs, labels));
    }
  }
}

TEST(Calibration, ExpectedCalibrationErrorOfAHandComputedCase) {
  // Bins of 0.1: confidence 0.9 right and wrong (accuracy 0.5), 0.6 right twice (accuracy 1).
  const std::vector<std::vector<double>> probs{{0.9, 0.1}, {0.1, 0.9}, {0.6, 0.4}, {0.4, 0.6}};
  const std::vector<int> labels{0, 0, 0, 1};
  EXPECT_NEAR(expected_calibration_error(probs, labels, 10), 0.5 * 0.4 + 0.5 * 0.4, 1e-12);
  const auto bins = reliability_bins(probs, labels, 10);
  EXPECT_EQ(bins[9].n, 2);
  EXPECT_NEAR(bins[9].accuracy, 0.5, 1e-12);
  EXPECT_EQ(bins[6].n, 2);
  EXPECT_NEAR(bins[6].confidence, 0.6, 1e-12);
  EXPECT_TRUE(std::isnan(expected_calibration_error({}, {})));
}

TEST(Calibration, AppliedWhenItCarriesOverToUnseenFolds) {
  // Three folds of one overconfident model (it needs T = 2.5): cross-fitted, the temperature helps.
  std::vector<FoldResult> folds;
  std::vector<int> labels;
  for (int k = 0; k < 3; ++k) {
    std::vector<std::vector<double>> p;
    std::vector<int> y;
    synthetic(1500, 2, 2.5, 100 + k, p, y);
    folds.push_back(fold_of(k, p, static_cast<std::int64_t>(labels.size())));
    labels.insert(labels.end(), y.begin(), y.end());
  }
  const Calibration c = calibrate(folds, labels);
  EXPECT_TRUE(c.applied);
  EXPECT_EQ(c.temperature, c.fitted);
  EXPECT_NEAR(c.temperature, 2.5, 0.25);
  EXPECT_LT(c.ece_after, c.ece_before);
  EXPECT_LT(c.nll_after, c.nll_before);
  EXPECT_EQ(c.n, 4500);
  ASSERT_EQ(c.fold_temperatures.size(), 3u);
  EXPECT_NE(calibration_summary(c).find("the fold models apply it"), std::string::npos) << calibration_summary(c);
}

TEST(Calibration, NotAppliedWhenTheFoldsDisagree) {
  // One fold needs T = 0.3, the other T = 4: each gets the other's temperature, which makes it worse.
  std::vector<std::vector<double>> p0, p1;
  std::vector<int> y0, y1;
  synthetic(1500, 2, 0.3, 11, p0, y0);
  synthetic(1500, 2, 4.0, 12, p1, y1);
  std::vector<int> labels = y0;
  labels.insert(labels.end(), y1.begin(), y1.end());
  const Calibration c = calibrate({fold_of(0, p0, 0), fold_of(1, p1, 1500)}, labels);
  EXPECT_FALSE(c.applied);
  EXPECT_EQ(c.temperature, 1);
  EXPECT_GE(c.nll_after, c.nll_before);
  EXPECT_NE(calibration_summary(c).find("none applied"), std::string::npos) << calibration_summary(c);
}
