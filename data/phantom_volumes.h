// Synthetic abdominal CT volumes with an ellipsoidal liver, 3-D lesions of each class and their masks,
// written in the three layouts tools/extract_lesions reads (3D-IRCADb-style DICOM + mask series,
// TCIA-style DICOM + DICOM-SEG, NIfTI volume + label map), so extraction is tested end to end against
// the planted ground truth. The anatomy is an analytic function of the patient position, sampled on a
// grid of any orientation; every number comes from Philox(seed, patient, ...).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ct/volume.h"

namespace livernet::data {

struct VolumePhantomConfig {
  int patients = 4;
  int min_lesions = 1, max_lesions = 4;
  std::array<std::int64_t, 3> size{128, 112, 36};
  io::Vec3 spacing{0.75, 0.75, 2.0};
  double min_diameter = 8, max_diameter = 24;  // mm
  double noise_hu = 12;
  // axial | flipped (right-left and head-feet reversed) | permuted (stored as sagittal slices) | oblique
  // (tilted 12 degrees about the left-right axis)
  std::string orientation = "axial";
  std::uint64_t seed = 1;
  std::string layout = "nifti";  // nifti | ircadb | dicom-seg (where written)
};

struct PlantedLesion {
  int label = 0;                // 0 cyst, 1 metastasis
  std::string class_name;       // "cyst" / "metastasis"
  std::string structure;        // its mask's name in the layout (e.g. "livertumor02", "Tumor_2", "3")
  io::Vec3 centre_lps{};        // analytic centre
  io::Vec3 semi_axes_mm{};      // along its own (rotated in-plane) axes
  double angle = 0;             // in-plane rotation (radians)
  std::int64_t voxels = 0;      // voxels whose centre lies inside, on the written grid
  io::Vec3 voxel_centroid_lps{};
};

struct PhantomVolume {
  std::string folder;                 // "<surname>_<n>": an identifier that must never reach outputs
  io::Volume ct;                      // on the written grid
  io::LabelVolume labels;             // 0 background, 1 liver, 2 metastasis, 3 cyst
  std::vector<std::pair<std::string, io::Mask>> structures;  // liver, portalvein, and one per lesion
  std::vector<PlantedLesion> lesions;
  // Identifiers planted in the DICOM files (the privacy test greps every output for them).
  std::string patient_name, patient_id, birth_date, accession_number, institution;
};

PhantomVolume make_phantom_volume(const VolumePhantomConfig& cfg, int patient);

// Writes cfg.patients patients under `dir` in cfg.layout:
//   nifti:     <folder>/ct.nii.gz + <folder>/labels.nii.gz (1 liver, 2 metastasis, 3 cyst)
//   ircadb:    <folder>/PATIENT_DICOM/image_N (file names shuffled) + <folder>/MASKS_DICOM/<structure>/
//              (liver, portalvein, livertumorNN, cysts as liverkyst/liverkyste/livercyst by patient)
//   dicom-seg: <folder>/CT/1-N.dcm + <folder>/SEG/1-1.dcm (segments Liver, Tumor_N, Cyst_N)
std::vector<PhantomVolume> write_phantom_volumes(const VolumePhantomConfig& cfg, const std::string& dir);

}  // namespace livernet::data
