#include "ct/volume.h"

#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace livernet::io {

namespace {
double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
std::string fmt(const char* f, double a, double b, double c) {
  char buf[96];
  std::snprintf(buf, sizeof buf, f, a, b, c);
  return buf;
}
}  // namespace

Vec3 Grid::to_lps(double i, double j, double k) const {
  const double d[3] = {i * spacing[0], j * spacing[1], k * spacing[2]};
  Vec3 p = origin;
  for (int a = 0; a < 3; ++a)
    for (int c = 0; c < 3; ++c) p[c] += axes[a][c] * d[a];
  return p;
}

Vec3 Grid::to_index(const Vec3& lps) const {
  const Vec3 d{lps[0] - origin[0], lps[1] - origin[1], lps[2] - origin[2]};
  return {dot(axes[0], d) / spacing[0], dot(axes[1], d) / spacing[1], dot(axes[2], d) / spacing[2]};
}

std::string Grid::str() const {
  return str_cat(size[0], "x", size[1], "x", size[2], " voxels of ", fmt("%.2fx%.2fx%.2f mm", spacing[0], spacing[1], spacing[2]));
}

void Grid::validate(const std::string& what) const {
  for (int a = 0; a < 3; ++a) {
    LN_CHECK(size[a] >= 1, what, ": the volume has ", size[0], "x", size[1], "x", size[2], " voxels");
    LN_CHECK(std::isfinite(spacing[a]) && spacing[a] > 0, what, ": voxel spacing ",
             fmt("%gx%gx%g mm", spacing[0], spacing[1], spacing[2]), " is not positive");
    LN_CHECK(std::isfinite(origin[a]), what, ": the origin is not finite");
    LN_CHECK(std::abs(std::sqrt(dot(axes[a], axes[a])) - 1) < 1e-3, what, ": direction ", a, " (",
             fmt("%g, %g, %g", axes[a][0], axes[a][1], axes[a][2]), ") is not a unit vector");
    for (int b = a + 1; b < 3; ++b)
      LN_CHECK(std::abs(dot(axes[a], axes[b])) < 1e-3, what, ": directions ", a, " and ", b, " are not orthogonal");
  }
  LN_CHECK(voxels() <= (std::int64_t{1} << 31), what, ": ", str(), " is more than the 2^31 voxels allowed");
}

std::string grid_difference(const Grid& a, const Grid& b, double tol_mm) {
  if (a.size != b.size)
    return str_cat("sizes ", a.size[0], "x", a.size[1], "x", a.size[2], " and ", b.size[0], "x", b.size[1], "x", b.size[2]);
  for (int d = 0; d < 3; ++d)
    if (std::abs(a.spacing[d] - b.spacing[d]) > 1e-3 * std::max(1.0, a.spacing[d]))
      return str_cat("spacings ", fmt("%.3fx%.3fx%.3f", a.spacing[0], a.spacing[1], a.spacing[2]), " and ",
                     fmt("%.3fx%.3fx%.3f mm", b.spacing[0], b.spacing[1], b.spacing[2]));
  for (int d = 0; d < 3; ++d)
    for (int c = 0; c < 3; ++c)
      if (std::abs(a.axes[d][c] - b.axes[d][c]) > 1e-3) return str_cat("orientations differ (axis ", d, ")");
  const double dist = std::sqrt((a.origin[0] - b.origin[0]) * (a.origin[0] - b.origin[0]) +
                                (a.origin[1] - b.origin[1]) * (a.origin[1] - b.origin[1]) +
                                (a.origin[2] - b.origin[2]) * (a.origin[2] - b.origin[2]));
  if (dist > tol_mm) return fmt("origins differ by %.2f mm", dist, 0, 0);
  return "";
}

double obliquity_degrees(const Grid& g) {
  double worst = 0;
  for (int a = 0; a < 3; ++a) {
    double m = 0;
    for (int c = 0; c < 3; ++c) m = std::max(m, std::abs(g.axes[a][c]));
    worst = std::max(worst, std::acos(std::min(1.0, m)) * 180.0 / M_PI);
  }
  return worst;
}

Reorientation canonical_reorientation(const Grid& g) {
  // Greedy assignment by the largest |cosine| first; ties cannot make two index axes share a patient
  // axis because each pick removes both.
  Reorientation r;
  bool used_src[3] = {false, false, false}, used_dst[3] = {false, false, false};
  for (int step = 0; step < 3; ++step) {
    int bs = -1, bd = -1;
    double best = -1;
    for (int s = 0; s < 3; ++s)
      for (int d = 0; d < 3; ++d)
        if (!used_src[s] && !used_dst[d] && std::abs(g.axes[s][d]) > best) best = std::abs(g.axes[s][d]), bs = s, bd = d;
    used_src[bs] = used_dst[bd] = true;
    r.perm[bd] = bs;
    r.flip[bd] = g.axes[bs][bd] < 0;
  }
  return r;
}

Grid reorient(const Grid& g, const Reorientation& r) {
  Grid o;
  Vec3 corner = g.origin;  // the source voxel that becomes (0, 0, 0)
  for (int a = 0; a < 3; ++a) {
    const int s = r.perm[a];
    o.size[a] = g.size[s];
    o.spacing[a] = g.spacing[s];
    o.axes[a] = g.axes[s];
    if (r.flip[a]) {
      for (int c = 0; c < 3; ++c) {
        corner[c] += g.axes[s][c] * g.spacing[s] * static_cast<double>(g.size[s] - 1);
        o.axes[a][c] = -g.axes[s][c];
      }
    }
  }
  o.origin = corner;
  return o;
}

template <typename T>
VolumeT<T> reorient(const VolumeT<T>& src, const Reorientation& r) {
  if (r.identity()) return src;
  VolumeT<T> out(reorient(src.grid, r));
  const auto& gs = src.grid;
  const auto& go = out.grid;
  // Source stride of each canonical axis, and the source index of canonical voxel (0, 0, 0).
  const std::int64_t src_stride[3] = {1, gs.size[0], gs.size[0] * gs.size[1]};
  std::int64_t stride[3], start = 0;
  for (int a = 0; a < 3; ++a) {
    stride[a] = r.flip[a] ? -src_stride[r.perm[a]] : src_stride[r.perm[a]];
    if (r.flip[a]) start += src_stride[r.perm[a]] * (gs.size[r.perm[a]] - 1);
  }
  std::size_t n = 0;
  for (std::int64_t k = 0; k < go.size[2]; ++k)
    for (std::int64_t j = 0; j < go.size[1]; ++j) {
      std::int64_t s = start + k * stride[2] + j * stride[1];
      for (std::int64_t i = 0; i < go.size[0]; ++i, s += stride[0]) out.v[n++] = src.v[static_cast<std::size_t>(s)];
    }
  return out;
}

template VolumeT<float> reorient(const VolumeT<float>&, const Reorientation&);
template VolumeT<std::int32_t> reorient(const VolumeT<std::int32_t>&, const Reorientation&);
template VolumeT<std::uint8_t> reorient(const VolumeT<std::uint8_t>&, const Reorientation&);

}  // namespace livernet::io
