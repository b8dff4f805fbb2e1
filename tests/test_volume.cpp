// Voxel grids in patient space: index <-> LPS mapping, grid comparison, obliquity, and the
// permutation/flip to the canonical (radiological axial) orientation.
#include <gtest/gtest.h>

#include <cmath>

#include "ct/volume.h"
#include "test_util.h"

using namespace livernet;
using namespace livernet::io;

namespace {

// A volume whose value encodes the LPS position of each voxel centre (x + 1000 y + 1e6 z, rounded mm).
Volume position_coded(const Grid& g) {
  Volume v(g);
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i) {
        const Vec3 p = g.to_lps(static_cast<double>(i), static_cast<double>(j), static_cast<double>(k));
        v.at(i, j, k) = static_cast<float>(std::round(p[0]) + 1000 * std::round(p[1]) + 1e6 * std::round(p[2]));
      }
  return v;
}

}  // namespace

TEST(Grid, IndexAndPatientCoordinatesAreInverse) {
  const double c = std::cos(0.3), s = std::sin(0.3);
  const Grid g = Grid{{7, 5, 3}, {0.7, 0.8, 2.5}, {-100, 50, 20}, {{{c, s, 0}, {-s, c, 0}, {0, 0, -1}}}};
  g.validate("g");
  const Vec3 p = g.to_lps(2.5, 1, 2);
  const Vec3 ijk = g.to_index(p);
  EXPECT_NEAR(ijk[0], 2.5, 1e-9);
  EXPECT_NEAR(ijk[1], 1, 1e-9);
  EXPECT_NEAR(ijk[2], 2, 1e-9);
  EXPECT_NEAR(p[2], 20 - 5, 1e-9);
  EXPECT_NEAR(obliquity_degrees(g), 0.3 * 180 / M_PI, 1e-9);
}

TEST(Grid, DifferencesAreNamed) {
  const Grid a = Grid{{4, 4, 4}, {1, 1, 2}, {0, 0, 0}, {{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}};
  Grid b = a;
  EXPECT_EQ(grid_difference(a, b), "");
  b.size[2] = 5;
  EXPECT_NE(grid_difference(a, b).find("sizes 4x4x4 and 4x4x5"), std::string::npos);
  b = a;
  b.origin[2] = 3;
  EXPECT_NE(grid_difference(a, b).find("origins differ by 3.00 mm"), std::string::npos);
  b = a;
  b.axes[0] = {-1, 0, 0};
  EXPECT_NE(grid_difference(a, b).find("orientations differ"), std::string::npos);
  b = a;
  b.spacing[0] = 0.5;
  EXPECT_NE(grid_difference(a, b).find("spacings"), std::string::npos);
}

TEST(Grid, ValidateRefusesDegenerateGrids) {
  Grid g = Grid{{4, 4, 4}, {1, 1, 0}, {0, 0, 0}, {{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}};
  EXPECT_NE(livernet::testing::error_of([&] { g.validate("scan.nii"); }).find("scan.nii: voxel spacing"), std::string::npos);
  g.spacing = {1, 1, 1};
  g.axes[1] = {1, 0, 0};
  EXPECT_NE(livernet::testing::error_of([&] { g.validate("scan.nii"); }).find("not orthogonal"), std::string::npos);
  g.axes[1] = {0, 1, 0};
  g.size = {100000, 100000, 1000};
  EXPECT_NE(livernet::testing::error_of([&] { g.validate("scan.nii"); }).find("2^31"), std::string::npos);
}

// Every voxel keeps its patient position through the reorientation, whatever the permutation and flips,
// and the result runs +x, +y, +z along i, j, k.
TEST(Grid, CanonicalReorientationKeepsEveryVoxelInPlace) {
  const std::array<std::array<Vec3, 3>, 4> cases{{
      {{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}},
      {{{-1, 0, 0}, {0, 1, 0}, {0, 0, -1}}},    // flipped left-right, slices head to feet
      {{{0, 0, 1}, {1, 0, 0}, {0, -1, 0}}},     // sagittal-ish permutation
      {{{0, -0.9950041652780258, 0.09983341664682815}, {0, 0.09983341664682815, 0.9950041652780258}, {-1, 0, 0}}},  // oblique
  }};
  for (const auto& axes : cases) {
    const Grid g = Grid{{5, 4, 3}, {1, 2, 3}, {10, -20, 30}, axes};
    const Volume v = position_coded(g);
    const Reorientation r = canonical_reorientation(g);
    const Volume c = reorient(v, r);
    for (int a = 0; a < 3; ++a) EXPECT_GT(c.grid.axes[a][a], 0.99) << "axis " << a;
    for (std::int64_t k = 0; k < c.grid.size[2]; ++k)
      for (std::int64_t j = 0; j < c.grid.size[1]; ++j)
        for (std::int64_t i = 0; i < c.grid.size[0]; ++i) {
          const Vec3 p = c.grid.to_lps(static_cast<double>(i), static_cast<double>(j), static_cast<double>(k));
          const float want = static_cast<float>(std::round(p[0]) + 1000 * std::round(p[1]) + 1e6 * std::round(p[2]));
          ASSERT_EQ(c.at(i, j, k), want) << i << "," << j << "," << k;
        }
    EXPECT_EQ(c.grid.voxels(), g.voxels());
  }
}
