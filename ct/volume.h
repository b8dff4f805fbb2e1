// CT volumes and masks on a voxel grid placed in patient space, shared by the DICOM and NIfTI readers
// and tools/extract_lesions.
//
// Voxel (i, j, k) = column i, row j, slice k, stored with i fastest (the order of DICOM pixel data and
// of NIfTI files). Patient coordinates are DICOM's LPS in millimetres: +x towards the patient's left,
// +y towards posterior, +z towards the head. NIfTI's RAS is converted on reading and writing.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace livernet::io {

using Vec3 = std::array<double, 3>;

struct Grid {
  std::array<std::int64_t, 3> size{0, 0, 0};  // ni (columns), nj (rows), nk (slices)
  Vec3 spacing{1, 1, 1};                      // mm between voxel centres along i, j, k
  Vec3 origin{0, 0, 0};                       // LPS mm of the centre of voxel (0, 0, 0)
  // axes[a] = unit LPS direction in which index a grows (orthonormal; the handedness is free).
  std::array<Vec3, 3> axes{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};

  std::int64_t voxels() const { return size[0] * size[1] * size[2]; }
  std::int64_t index(std::int64_t i, std::int64_t j, std::int64_t k) const { return (k * size[1] + j) * size[0] + i; }
  Vec3 to_lps(double i, double j, double k) const;
  Vec3 to_index(const Vec3& lps) const;  // the inverse of to_lps (continuous indices)
  double voxel_volume_mm3() const { return spacing[0] * spacing[1] * spacing[2]; }
  // "512x512x129 voxels of 0.70x0.70x2.50 mm"
  std::string str() const;
  // Throws Error (prefixed with `what`) unless sizes are positive, spacings positive and finite, and the
  // axes unit length and orthogonal (within 1e-3).
  void validate(const std::string& what) const;
};

// "" when a and b are the same grid (sizes equal; spacing, origin within tol_mm; axes within 1e-3),
// else one phrase saying how they differ ("sizes 512x512x129 and 512x512x128", "origins differ by 3.2 mm").
std::string grid_difference(const Grid& a, const Grid& b, double tol_mm = 0.05);

// The largest angle (degrees) between an index axis and the patient axis it is closest to.
double obliquity_degrees(const Grid& g);

template <typename T>
struct VolumeT {
  Grid grid;
  std::vector<T> v;  // grid.voxels() values, i fastest

  VolumeT() = default;
  explicit VolumeT(const Grid& g, T fill = T{}) : grid(g), v(static_cast<std::size_t>(g.voxels()), fill) {}
  T& at(std::int64_t i, std::int64_t j, std::int64_t k) { return v[static_cast<std::size_t>(grid.index(i, j, k))]; }
  const T& at(std::int64_t i, std::int64_t j, std::int64_t k) const {
    return v[static_cast<std::size_t>(grid.index(i, j, k))];
  }
};

using Volume = VolumeT<float>;              // HU
using LabelVolume = VolumeT<std::int32_t>;  // label values, 0 = background
using Mask = VolumeT<std::uint8_t>;         // 0 / 1

// How to_canonical maps axes: canonical axis a is source axis perm[a], reversed when flip[a].
struct Reorientation {
  std::array<int, 3> perm{0, 1, 2};
  std::array<bool, 3> flip{false, false, false};
  bool identity() const { return perm == std::array<int, 3>{0, 1, 2} && flip == std::array<bool, 3>{false, false, false}; }
};

// The permutation/flips (no interpolation) that make i run right->left (+x), j anterior->posterior (+y)
// and k feet->head (+z), giving each index axis the patient axis it is closest to: an axial slice of the
// result is a k-plane shown the radiological way (the patient's right on the image's left).
Reorientation canonical_reorientation(const Grid& g);
Grid reorient(const Grid& g, const Reorientation& r);
template <typename T>
VolumeT<T> reorient(const VolumeT<T>& src, const Reorientation& r);
template <typename T>
VolumeT<T> to_canonical(const VolumeT<T>& src) {
  return reorient(src, canonical_reorientation(src.grid));
}

}  // namespace livernet::io
