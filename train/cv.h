// Patient-level stratified cross-validation: every patient's lesions fall in exactly one test fold, and
// the folds' class proportions are as even as the patients allow. Each training part is split again,
// by patient, into training and validation (early stopping, LR plateau, best checkpoint). All choices
// are a function of the seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace livernet::train {

struct Fold {
  std::vector<std::int64_t> train, val, test;  // sample indices
  std::vector<std::string> test_patients, val_patients;
};

// Assigns patients to k groups (stratified by their lesions' classes). Returns group index per patient
// id, in first-appearance order of `patient_ids`.
std::vector<int> assign_patient_groups(const std::vector<std::string>& patient_ids, const std::vector<int>& labels,
                                       int num_classes, int k, std::uint64_t seed);

// k folds for the dataset; throws a clear Error when there are fewer patients than folds or a class is
// missing.
std::vector<Fold> make_folds(const data::Dataset& d, int k, double val_fraction, std::uint64_t seed);

// One epoch's sample order: shuffled, and with random oversampling of the smaller classes up to the largest
// one when `oversample` (a function of seed and epoch).
std::vector<std::int64_t> epoch_order(const std::vector<std::int64_t>& indices, const std::vector<int>& labels,
                                      int num_classes, bool oversample, std::uint64_t seed, std::uint64_t epoch);

}  // namespace livernet::train
