// Synthetic liver-lesion CT patches (HU) for the demo and the tests: patients with their own contrast
// phase, noise level and parenchymal texture; benign cysts (round/oval, sharp, homogeneous, 0-20 HU)
// and colorectal metastases (lobulated or irregular, hypo-attenuating, heterogeneous, often an
// enhancing rim or a necrotic centre), optionally haemangiomas; partial-volume blur; vessels; and hard
// cases on both sides (small lesions, noisy scans, homogeneous metastases, thin-walled cysts). Every
// number comes from Philox(seed, patient, lesion), so the same seed gives the same dataset.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace livernet::data {

struct PhantomConfig {
  int patients = 60;
  int min_lesions = 1, max_lesions = 8;
  int size = 64;                     // patch size in pixels
  float spacing_min = 0.7f, spacing_max = 0.9f;  // mm per pixel (per patient)
  float min_diameter = 5, max_diameter = 60;     // mm
  float hard_fraction = 0.25f;       // share of lesions drawn as hard cases
  bool hemangioma = false;           // a third class
  std::uint64_t seed = 1;
};

struct PhantomLesion {
  int label;
  float diameter_mm;
  bool hard;
  float mean_hu_centre;  // mean HU in the central disc (radius 1/3 of the lesion's): the trivial rule's input
};

// The dataset (classes "cyst", "metastasis"[, "hemangioma"]) and per-lesion ground truth.
data::Dataset make_phantoms(const PhantomConfig& cfg, std::vector<PhantomLesion>* truth = nullptr);

}  // namespace livernet::data
