// Lesion datasets: CT patches in Hounsfield units with labels, patient ids and lesion ids.
//  - Dataset file (HDF5): images (N, H, W) float32 or int16 in HU, labels (N) int, patient_id (N) and
//    lesion_id (N) strings, optional spacing_mm (N, 2) and source (N); root attribute classes (names in
//    label order).
//  - CSV manifest: path,label,patient_id[,lesion_id] with a header; paths relative to the manifest's
//    folder and never outside it; label = class name or index; .npy (HU), 16-bit PNG (HU + offset) or
//    8-bit PNG (display values, mapped onto the HU window).
// Every problem is reported as one line naming the file (and the row) and what is wrong.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/preprocess.h"

namespace livernet::data {

struct Dataset {
  std::string path;                       // where it came from
  std::vector<Tensor> images;             // each [H, W] f32 in HU, on the CPU
  std::vector<int> labels;
  std::vector<std::string> patient_ids;
  std::vector<std::string> lesion_ids;
  std::vector<std::string> class_names;
  std::vector<std::array<float, 2>> spacing_mm;  // empty when unknown
  std::vector<std::string> sources;              // empty when unknown
  // How tools/extract_lesions cut the patches (data::ExtractOptions as JSON, lesions.h: extraction_json), the
  // root attribute "extraction" of a dataset file; empty when unknown (phantoms, manifests, older files).
  std::string extraction;

  std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
  int num_classes() const { return static_cast<int>(class_names.size()); }
  std::vector<std::int64_t> class_counts() const;
  int num_patients() const;
  // The samples at `indices` (images shared, not copied).
  Dataset subset(const std::vector<std::int64_t>& indices) const;
  // Throws Error (naming the file) when the fields disagree or values are out of range.
  void validate() const;
  // One line: "230 lesions, 63 patients, classes cyst 80 / metastasis 150, patches 64x64".
  std::string summary() const;
};

struct ManifestOptions {
  HuWindow window;             // 8-bit PNGs are mapped onto this window
  float png_hu_offset = 32768.f;  // 16-bit PNG sample = HU + offset
  std::vector<std::string> class_names;  // fixed order; empty = sorted names found in the file
};

Dataset load_dataset(const std::string& path, const ManifestOptions& manifest = {});
Dataset load_dataset_h5(const std::string& path);
Dataset load_manifest(const std::string& csv_path, const ManifestOptions& options = {});
// Writes the dataset file atomically. All images must have the same size (stored as (N, H, W) f32).
void save_dataset_h5(const Dataset& d, const std::string& path);

}  // namespace livernet::data
