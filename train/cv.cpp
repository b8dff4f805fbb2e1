#include "train/cv.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "core/philox.h"

namespace livernet::train {

namespace {

// Deterministic Fisher-Yates shuffle from Philox(seed, stream).
template <typename T>
void shuffle(std::vector<T>& v, std::uint64_t seed, std::uint64_t stream) {
  for (std::size_t i = v.size(); i > 1; --i) {
    const Philox4x32 r = philox_block(seed, stream, i);
    const std::uint64_t x = (static_cast<std::uint64_t>(r.v[0]) << 32) | r.v[1];
    std::swap(v[i - 1], v[x % i]);
  }
}

}  // namespace

std::vector<int> assign_patient_groups(const std::vector<std::string>& patient_ids, const std::vector<int>& labels,
                                       int num_classes, int k, std::uint64_t seed) {
  // Per-patient class counts, in first-appearance order.
  std::vector<std::string> order;
  std::map<std::string, std::size_t> index;
  std::vector<std::vector<int>> counts;
  for (std::size_t i = 0; i < patient_ids.size(); ++i) {
    auto [it, inserted] = index.emplace(patient_ids[i], order.size());
    if (inserted) {
      order.push_back(patient_ids[i]);
      counts.emplace_back(num_classes, 0);
    }
    ++counts[it->second][labels[i]];
  }
  const std::size_t np = order.size();
  std::vector<double> total(num_classes, 0);
  for (const auto& c : counts)
    for (int j = 0; j < num_classes; ++j) total[j] += c[j];
  // Largest patients first (they are hardest to place), ties in a seeded random order.
  std::vector<std::size_t> visit(np);
  std::iota(visit.begin(), visit.end(), 0);
  shuffle(visit, seed, 0x5e11ull);
  std::stable_sort(visit.begin(), visit.end(), [&](std::size_t a, std::size_t b) {
    return std::accumulate(counts[a].begin(), counts[a].end(), 0) > std::accumulate(counts[b].begin(), counts[b].end(), 0);
  });
  std::vector<std::vector<double>> fold(k, std::vector<double>(num_classes, 0));
  std::vector<int> fold_patients(k, 0);
  std::vector<int> group(np, 0);
  for (std::size_t p : visit) {
    int best = 0;
    double best_cost = INFINITY;
    for (int f = 0; f < k; ++f) {
      // Spread of each class's share across the folds after putting p into f; then fewer lesions, fewer patients.
      double cost = 0;
      for (int j = 0; j < num_classes; ++j) {
        if (total[j] == 0) continue;
        double mean = 0, var = 0;
        for (int g = 0; g < k; ++g) mean += (fold[g][j] + (g == f ? counts[p][j] : 0)) / total[j];
        mean /= k;
        for (int g = 0; g < k; ++g) {
          const double s = (fold[g][j] + (g == f ? counts[p][j] : 0)) / total[j] - mean;
          var += s * s;
        }
        cost += var;
      }
      double size = 0;
      for (int j = 0; j < num_classes; ++j) size += fold[f][j];
      cost += 1e-9 * size + 1e-12 * fold_patients[f];
      if (cost < best_cost) best_cost = cost, best = f;
    }
    group[p] = best;
    ++fold_patients[best];
    for (int j = 0; j < num_classes; ++j) fold[best][j] += counts[p][j];
  }
  return group;
}

std::vector<Fold> make_folds(const data::Dataset& d, int k, double val_fraction, std::uint64_t seed) {
  const int np = d.num_patients();
  LN_CHECK(k >= 2, d.path, ": cross-validation needs at least 2 folds");
  LN_CHECK(np >= k, d.path, ": ", np, " patient(s) cannot be split into ", k,
           " patient-level folds; use fewer folds (cv.folds) or more patients");
  const auto counts = d.class_counts();
  for (std::size_t j = 0; j < counts.size(); ++j)
    LN_CHECK(counts[j] > 0, d.path, ": class '", d.class_names[j], "' has no samples; training needs every class");
  std::vector<std::string> patients;
  {
    std::map<std::string, int> seen;
    for (const auto& p : d.patient_ids)
      if (seen.emplace(p, 0).second) patients.push_back(p);
  }
  const std::vector<int> group = assign_patient_groups(d.patient_ids, d.labels, d.num_classes(), k, seed);
  std::map<std::string, int> group_of;
  for (std::size_t i = 0; i < patients.size(); ++i) group_of[patients[i]] = group[i];
  std::vector<Fold> folds(k);
  for (int f = 0; f < k; ++f) {
    Fold& fold = folds[f];
    std::vector<std::int64_t> rest;
    std::vector<std::string> rest_pids;
    std::vector<int> rest_labels;
    for (std::int64_t i = 0; i < d.size(); ++i) {
      if (group_of[d.patient_ids[i]] == f) {
        fold.test.push_back(i);
      } else {
        rest.push_back(i);
        rest_pids.push_back(d.patient_ids[i]);
        rest_labels.push_back(d.labels[i]);
      }
    }
    for (const auto& p : patients)
      if (group_of[p] == f) fold.test_patients.push_back(p);
    // Validation: one group of a patient-level split of the rest into round(1 / val_fraction) groups.
    std::vector<std::string> rest_patients;
    {
      std::map<std::string, int> seen;
      for (const auto& p : rest_pids)
        if (seen.emplace(p, 0).second) rest_patients.push_back(p);
    }
    const int inner = std::max(2, std::min(static_cast<int>(rest_patients.size()), static_cast<int>(std::lround(1.0 / val_fraction))));
    LN_CHECK(rest_patients.size() >= 2, d.path, ": fold ", f, " leaves ", rest_patients.size(),
             " training patient(s): too few to hold some out for validation");
    const std::vector<int> inner_group = assign_patient_groups(rest_pids, rest_labels, d.num_classes(), inner, seed + 1000 + f);
    std::map<std::string, int> inner_of;
    for (std::size_t i = 0; i < rest_patients.size(); ++i) inner_of[rest_patients[i]] = inner_group[i];
    for (std::size_t j = 0; j < rest.size(); ++j) (inner_of[rest_pids[j]] == 0 ? fold.val : fold.train).push_back(rest[j]);
    for (const auto& p : rest_patients)
      if (inner_of[p] == 0) fold.val_patients.push_back(p);
    LN_CHECK(!fold.train.empty() && !fold.val.empty() && !fold.test.empty(), d.path, ": fold ", f,
             " would have an empty train, validation or test part");
  }
  return folds;
}

std::vector<std::int64_t> epoch_order(const std::vector<std::int64_t>& indices, const std::vector<int>& labels,
                                      int num_classes, bool oversample, std::uint64_t seed, std::uint64_t epoch) {
  std::vector<std::int64_t> order = indices;
  const std::uint64_t stream = 0x0e90c400000000ull + epoch;
  if (oversample) {
    std::vector<std::vector<std::int64_t>> by_class(num_classes);
    for (std::int64_t i : indices) by_class[labels[i]].push_back(i);
    std::size_t largest = 0;
    for (const auto& c : by_class) largest = std::max(largest, c.size());
    std::uint64_t draw = 0;
    for (const auto& c : by_class) {
      if (c.empty()) continue;
      for (std::size_t extra = c.size(); extra < largest; ++extra) {
        const Philox4x32 r = philox_block(seed, stream ^ 0x0a5a5a5a5ull, draw++);
        order.push_back(c[r.v[0] % c.size()]);
      }
    }
  }
  shuffle(order, seed, stream);
  return order;
}

}  // namespace livernet::train
