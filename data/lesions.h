// From a CT volume and its structure masks to lesion patches (tools/extract_lesions).
//
// Per patient: the volume and masks are brought to the canonical orientation (axial k-planes, the
// patient's right on the image's left; io::to_canonical), the masks of each class are united, and every
// 3-D connected component (26-connected) of at least the minimum volume is one lesion. Its sample is
// the axial slice where it has the largest area, resampled to a fixed in-plane spacing, cropped square
// around the lesion's in-plane bounding box with a context margin, in HU (bilinear, box-filtered when
// the field of view has to grow for a large lesion). Optionally the neighbouring slices are added as
// extra samples with the same lesion id.
#pragma once

#include <array>
#include <map>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "ct/volume.h"

namespace livernet::data {

// Structure name -> class: full-match, case-insensitive regular expressions, first match wins.
// From YAML (`cyst: ["liverkyste?", "livercyst.*"]`, classes in file order) or CSV (`pattern,class`).
struct ClassMap {
  std::vector<std::string> classes;
  std::vector<std::pair<std::string, int>> rules;  // pattern, class index

  static ClassMap load(const std::string& path);
  static ClassMap parse_yaml(const std::string& text, const std::string& where);
  static ClassMap parse_csv(const std::string& text, const std::string& where);
  // One class, `name`, of the structures `pattern` matches: which structures are lesions (tools/predict --ct),
  // not a map to train on (those need two classes).
  static ClassMap single(const std::string& pattern, const std::string& name, const std::string& where);
  int match(const std::string& structure) const;  // class index, or -1

 private:
  std::vector<std::regex> compiled_;
  void compile(const std::string& where, std::size_t min_classes = 2);
};

struct ExtractOptions {
  double spacing_mm = 0.8;       // in-plane spacing of the patches
  int size = 96;                 // patch side in pixels (the field of view is size x spacing)
  double margin_mm = 8;          // context kept around the lesion; the field of view grows when needed
  double min_volume_mm3 = 20;    // smaller components are noise
  int neighbours = 0;            // extra samples from slices k*-n..k*+n where the lesion is present
  float fill_hu = -1024;         // outside the scanned volume
};

// The options as the JSON a dataset file and a model file record ("extraction"): spacing_mm, size, margin_mm,
// min_volume_mm3, neighbours, fill_hu; and back (a key left out keeps its default; anything else out of place
// throws Error("<what>: damaged 'extraction' (...)")).
std::string extraction_json(const ExtractOptions& o);
ExtractOptions parse_extraction(const std::string& json, const std::string& what);

struct LesionRecord {
  std::string patient, lesion, class_name, structures;
  int label = 0;
  double volume_ml = 0;
  double max_diameter_mm = 0;      // longest in-plane diameter on the sample slice
  std::int64_t slice = 0;          // canonical k of the sample slice
  std::array<std::int64_t, 6> bbox{};  // canonical i0 j0 k0 i1 j1 k1 (inclusive)
  io::Vec3 centroid_lps{};         // mm
  double patch_spacing_mm = 0;     // > spacing_mm when the field of view had to grow
  int samples = 0;
};

struct PatientScan {
  std::string patient;  // pseudonymous id
  int lesion_offset = 0;  // lesions are numbered <patient>_L<offset + 1>, ...
  io::Volume ct;
  std::vector<std::pair<std::string, io::Mask>> structures;  // name -> mask on ct's grid
  std::vector<std::string> ignored;  // structures present but not in the class map (not loaded)
  std::vector<std::string> notes;    // warnings from reading (e.g. a NIfTI file without orientation)
};

struct PatientResult {
  std::vector<LesionRecord> lesions;
  std::vector<Tensor> images;          // [size, size] HU, one per sample
  std::vector<int> sample_lesion;      // index into lesions, per image
  std::vector<std::string> notes;      // warnings worth printing
  std::int64_t below_min_volume = 0;   // components dropped
};

// Throws Error when a mask is not on the CT's grid or nothing matches the class map.
PatientResult extract_patient(const PatientScan& scan, const ClassMap& classes, const ExtractOptions& o);

// Appends a patient's samples to a dataset (classes must already be set).
void append_samples(data::Dataset& d, const PatientResult& r, const std::string& source_prefix);

}  // namespace livernet::data

namespace livernet::data {

// One patient found under the input root. `name` is the path relative to the root (used only to derive
// the pseudonym and to tell the user which folder failed: it never reaches an output file).
struct PatientSource {
  std::string name;
  std::string ct;                  // folder (DICOM layouts) or file (NIfTI)
  std::vector<std::string> masks;  // ircadb: mask folders; dicom-seg: SEG files; nifti: the label map
  std::string series_uid;          // dicom-seg: the CT series the SEG files refer to
  std::map<int, std::string> label_names;  // nifti: from an MSD-style dataset.json at the root ("labels")
};

// Layouts: "ircadb" (<patient>/PATIENT_DICOM + <patient>/MASKS_DICOM/<structure>/, or the root itself),
// "dicom-seg" (every folder under the root holding a DICOM-SEG, paired with the CT series it references;
// the patient is the first folder below the root), "nifti" (image + label map pairs: LiTS volume-N /
// segmentation-N, MSD imagesTr / labelsTr, or one image and one label file per folder; label values are
// matched by value, or by their name in an MSD dataset.json at the root). Files that cannot be paired are
// reported in *notes.
std::vector<PatientSource> find_patients(const std::string& root, const std::string& layout, std::vector<std::string>* notes);

// Reads the CT and the structures the class map matches; the names of the others go to `ignored`.
PatientScan load_patient(const PatientSource& src, const std::string& layout, const ClassMap& classes);

}  // namespace livernet::data
