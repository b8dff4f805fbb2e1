#include "data/phantom_volumes.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/philox.h"
#include "ct/dicom.h"
#include "ct/nifti.h"

namespace livernet::data {

namespace {

namespace fs = std::filesystem;

const char* kSurnames[] = {"Tremblay", "Gagnon", "Roy", "Cote", "Bouchard", "Gauthier", "Morin", "Lavoie"};

struct Anatomy {
  io::Vec3 centre{};      // of the field of view
  io::Vec3 liver_c{}, liver_r{};
  double body_rx = 0, body_ry = 0;
  double vein_x = 0, vein_y = 0, vein_r = 0;
  double liver_hu = 0, tissue_hu = 0;
  std::vector<PlantedLesion> lesions;
};

double ellipsoid_rho(const PlantedLesion& l, const io::Vec3& p) {
  const double dx = p[0] - l.centre_lps[0], dy = p[1] - l.centre_lps[1], dz = p[2] - l.centre_lps[2];
  const double c = std::cos(l.angle), s = std::sin(l.angle);
  const double u = c * dx + s * dy, v = -s * dx + c * dy;
  return std::sqrt((u * u) / (l.semi_axes_mm[0] * l.semi_axes_mm[0]) + (v * v) / (l.semi_axes_mm[1] * l.semi_axes_mm[1]) +
                   (dz * dz) / (l.semi_axes_mm[2] * l.semi_axes_mm[2]));
}

double liver_rho(const Anatomy& a, const io::Vec3& p) {
  double s = 0;
  for (int d = 0; d < 3; ++d) s += (p[d] - a.liver_c[d]) * (p[d] - a.liver_c[d]) / (a.liver_r[d] * a.liver_r[d]);
  return std::sqrt(s);
}

// HU and label (0 background, 1 liver, 2 metastasis, 3 cyst; -1 vein) at a patient position, without noise.
std::pair<float, int> tissue_at(const Anatomy& a, const io::Vec3& p) {
  const double bx = (p[0] - a.centre[0]) / a.body_rx, by = (p[1] - a.centre[1]) / a.body_ry;
  const double body = std::sqrt(bx * bx + by * by);
  if (body > 1) return {-1000.f, 0};
  for (const auto& l : a.lesions) {
    const double rho = ellipsoid_rho(l, p);
    if (rho <= 1) {
      if (l.label == 0) return {8.f, 3};
      return {static_cast<float>(rho > 0.8 ? 95 : (rho < 0.35 ? 35 : 55)), 2};
    }
  }
  const double vx = p[0] - a.vein_x, vy = p[1] - a.vein_y;
  if (vx * vx + vy * vy <= a.vein_r * a.vein_r) return {170.f, -1};
  if (liver_rho(a, p) <= 1) return {static_cast<float>(a.liver_hu), 1};
  return {static_cast<float>(body > 0.88 ? -100 : a.tissue_hu), 0};
}

io::Grid axial_grid(const VolumePhantomConfig& cfg, const io::Vec3& centre) {
  io::Grid g;
  g.size = cfg.size;
  g.spacing = cfg.spacing;
  for (int d = 0; d < 3; ++d) g.origin[d] = centre[d] - 0.5 * g.spacing[d] * static_cast<double>(g.size[d] - 1);
  return g;
}

io::Grid oblique_grid(const VolumePhantomConfig& cfg, const io::Vec3& centre) {
  io::Grid g = axial_grid(cfg, centre);
  const double t = 12.0 * M_PI / 180.0;
  g.axes = {{{1, 0, 0}, {0, std::cos(t), std::sin(t)}, {0, -std::sin(t), std::cos(t)}}};
  g.origin = centre;
  for (int a = 0; a < 3; ++a)
    for (int c = 0; c < 3; ++c) g.origin[c] -= g.axes[a][c] * 0.5 * g.spacing[a] * static_cast<double>(g.size[a] - 1);
  return g;
}

}  // namespace

PhantomVolume make_phantom_volume(const VolumePhantomConfig& cfg, int patient) {
  LN_CHECK(cfg.min_lesions >= 1 && cfg.min_lesions <= cfg.max_lesions, "phantom volumes: lesions per patient must be 1 <= min <= max");
  const std::uint64_t stream = 0x564f4c00ull + static_cast<std::uint64_t>(patient);
  std::uint64_t draw = 0;
  auto uni = [&](double lo, double hi) { return static_cast<double>(philox_uniform_at(cfg.seed, stream, draw++, static_cast<float>(lo), static_cast<float>(hi))); };

  Anatomy a;
  const double ext[3] = {cfg.spacing[0] * static_cast<double>(cfg.size[0]), cfg.spacing[1] * static_cast<double>(cfg.size[1]),
                         cfg.spacing[2] * static_cast<double>(cfg.size[2])};
  a.centre = {uni(-30, 30), uni(-20, 20), uni(-100, 100)};
  a.body_rx = 0.55 * ext[0], a.body_ry = 0.5 * ext[1];
  // The liver sits on the patient's right (-x in LPS).
  a.liver_r = {0.3 * ext[0], 0.3 * ext[1], 0.36 * ext[2]};
  a.liver_c = {a.centre[0] - 0.1 * ext[0], a.centre[1] - 0.03 * ext[1], a.centre[2]};
  a.vein_x = a.liver_c[0] + 0.55 * a.liver_r[0], a.vein_y = a.liver_c[1] + 0.5 * a.liver_r[1], a.vein_r = 2.5;
  a.liver_hu = uni(95, 125), a.tissue_hu = uni(30, 50);
  const int n = cfg.min_lesions + static_cast<int>(uni(0, 0.999) * (cfg.max_lesions - cfg.min_lesions + 1));
  const double gap = 2.5 * std::max({cfg.spacing[0], cfg.spacing[1], cfg.spacing[2]});
  int tumours = 0, cysts = 0;
  for (int tries = 0; static_cast<int>(a.lesions.size()) < n && tries < 2000; ++tries) {
    PlantedLesion l;
    // Both classes in every patient with two or more lesions (first a cyst, then a metastasis), then random.
    l.label = a.lesions.size() < 2 && n >= 2 ? static_cast<int>(a.lesions.size()) : (uni(0, 1) < 0.5 ? 0 : 1);
    const double d = uni(cfg.min_diameter, cfg.max_diameter);
    l.semi_axes_mm = {0.5 * d * uni(0.85, 1.15), 0.5 * d * uni(0.85, 1.15), 0.5 * d * uni(0.85, 1.1)};
    l.angle = uni(0, M_PI);
    const double rmax = std::max({l.semi_axes_mm[0], l.semi_axes_mm[1], l.semi_axes_mm[2]});
    for (int dd = 0; dd < 3; ++dd) {
      const double room = a.liver_r[dd] * 0.8 - rmax;
      l.centre_lps[dd] = a.liver_c[dd] + uni(-1, 1) * std::max(0.0, room);
    }
    if (liver_rho(a, l.centre_lps) > 0.85 - rmax / std::min({a.liver_r[0], a.liver_r[1], a.liver_r[2]})) continue;
    bool clear = true;
    for (const auto& o : a.lesions) {
      double dist = 0;
      for (int dd = 0; dd < 3; ++dd) dist += (o.centre_lps[dd] - l.centre_lps[dd]) * (o.centre_lps[dd] - l.centre_lps[dd]);
      const double ro = std::max({o.semi_axes_mm[0], o.semi_axes_mm[1], o.semi_axes_mm[2]});
      clear = clear && std::sqrt(dist) > rmax + ro + gap;
    }
    const double vx = l.centre_lps[0] - a.vein_x, vy = l.centre_lps[1] - a.vein_y;
    clear = clear && std::sqrt(vx * vx + vy * vy) > rmax + a.vein_r + gap;
    if (!clear) continue;
    l.class_name = l.label == 0 ? "cyst" : "metastasis";
    a.lesions.push_back(l);
  }
  LN_CHECK(!a.lesions.empty(), "phantom volumes: no room for a lesion; use a larger --volume-size");

  // Sample on the axial grid (or the oblique one), then reorder for the flipped/permuted variants.
  const bool oblique = cfg.orientation == "oblique";
  LN_CHECK(oblique || cfg.orientation == "axial" || cfg.orientation == "flipped" || cfg.orientation == "permuted",
           "phantom volumes: unknown orientation '", cfg.orientation, "' (axial, flipped, permuted, oblique)");
  const io::Grid g = oblique ? oblique_grid(cfg, a.centre) : axial_grid(cfg, a.centre);
  PhantomVolume pv;
  pv.ct = io::Volume(g);
  pv.labels = io::LabelVolume(g);
  io::Mask vein(g);
  std::int64_t idx = 0;
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i, ++idx) {
        const io::Vec3 p = g.to_lps(static_cast<double>(i), static_cast<double>(j), static_cast<double>(k));
        auto [hu, label] = tissue_at(a, p);
        if (hu > -1000)
          hu += philox_normal_at(cfg.seed, stream ^ 0x4e4f4953ull, static_cast<std::uint64_t>(idx), 0.f, static_cast<float>(cfg.noise_hu));
        pv.ct.v[idx] = std::round(hu);
        if (label == -1) vein.v[idx] = 1, label = 0;
        pv.labels.v[idx] = label;
      }
  io::Reorientation r;
  if (cfg.orientation == "flipped") r.flip = {true, false, true};
  if (cfg.orientation == "permuted") r.perm = {1, 2, 0}, r.flip = {false, true, false};
  pv.ct = io::reorient(pv.ct, r);
  pv.labels = io::reorient(pv.labels, r);
  vein = io::reorient(vein, r);
  const io::Grid& wg = pv.ct.grid;

  // Per-lesion masks and ground truth on the written grid.
  static const char* kCystNames[] = {"liverkyst", "liverkyste", "livercyst"};
  io::Mask liver(wg);
  for (std::size_t n2 = 0; n2 < liver.v.size(); ++n2) liver.v[n2] = pv.labels.v[n2] != 0;
  pv.structures.emplace_back(cfg.layout == "dicom-seg" ? "Liver" : (cfg.layout == "nifti" ? "1" : "liver"), liver);
  if (cfg.layout == "ircadb") pv.structures.emplace_back("portalvein", vein);
  for (auto& l : a.lesions) {
    io::Mask m(wg);
    double s[3] = {0, 0, 0};
    std::int64_t q = 0;
    for (std::int64_t k = 0; k < wg.size[2]; ++k)
      for (std::int64_t j = 0; j < wg.size[1]; ++j)
        for (std::int64_t i = 0; i < wg.size[0]; ++i, ++q) {
          const io::Vec3 p = wg.to_lps(static_cast<double>(i), static_cast<double>(j), static_cast<double>(k));
          if (ellipsoid_rho(l, p) <= 1) {
            m.v[q] = 1;
            ++l.voxels;
            for (int d = 0; d < 3; ++d) s[d] += p[d];
          }
        }
    for (int d = 0; d < 3; ++d) l.voxel_centroid_lps[d] = l.voxels ? s[d] / static_cast<double>(l.voxels) : 0;
    if (cfg.layout == "ircadb")
      l.structure = l.label == 1 ? str_cat("livertumor", tumours + 1 < 10 ? "0" : "", tumours + 1)
                                 : str_cat(kCystNames[patient % 3], cysts + 1 < 10 ? "0" : "", cysts + 1);
    else if (cfg.layout == "dicom-seg")
      l.structure = l.label == 1 ? str_cat("Tumor_", tumours + 1) : str_cat("Cyst_", cysts + 1);
    else
      l.structure = l.label == 1 ? "2" : "3";
    (l.label == 1 ? tumours : cysts)++;
    if (l.voxels > 0 && cfg.layout != "nifti") pv.structures.emplace_back(l.structure, std::move(m));
    if (l.voxels > 0) pv.lesions.push_back(l);
  }
  if (cfg.layout == "nifti") {  // the label map holds each class once
    for (int label : {2, 3}) {
      io::Mask m(wg);
      for (std::size_t n2 = 0; n2 < m.v.size(); ++n2) m.v[n2] = pv.labels.v[n2] == label;
      pv.structures.emplace_back(std::to_string(label), std::move(m));
    }
  }
  pv.folder = str_cat(kSurnames[patient % 8], "_", patient + 1);
  pv.patient_name = str_cat(kSurnames[patient % 8], "^Josephine", patient + 1);
  pv.patient_id = str_cat("MRN", 4170 + patient, "X");
  pv.birth_date = str_cat("19560", 1 + patient % 9, "12");
  pv.accession_number = str_cat("ACC", 88231 + patient);
  pv.institution = "Hopital Imaginaire de Montreal";
  return pv;
}

std::vector<PhantomVolume> write_phantom_volumes(const VolumePhantomConfig& cfg, const std::string& dir) {
  LN_CHECK(cfg.layout == "nifti" || cfg.layout == "ircadb" || cfg.layout == "dicom-seg", "phantom volumes: unknown layout '",
           cfg.layout, "' (nifti, ircadb, dicom-seg)");
  std::vector<PhantomVolume> out;
  for (int p = 0; p < cfg.patients; ++p) {
    PhantomVolume pv = make_phantom_volume(cfg, p);
    const fs::path root = fs::path(dir) / pv.folder;
    fs::create_directories(root);
    io::DicomIdentity who;
    who.patient_name = pv.patient_name;
    who.patient_id = pv.patient_id;
    who.birth_date = pv.birth_date;
    who.accession_number = pv.accession_number;
    who.institution = pv.institution;
    if (cfg.layout == "nifti") {
      io::write_nifti((root / "ct.nii.gz").string(), pv.ct);
      io::NiftiWriteOptions lo;
      lo.datatype = "uint8";
      io::write_nifti((root / "labels.nii.gz").string(), pv.labels, lo);
    } else if (cfg.layout == "ircadb") {
      io::write_dicom_series((root / "PATIENT_DICOM").string(), pv.ct, who, "image_{}", /*shuffle_names=*/true);
      for (const auto& [name, mask] : pv.structures)
        io::write_dicom_mask_series((root / "MASKS_DICOM" / name).string(), mask, who, "image_{}");
    } else {
      const std::string uid = io::write_dicom_series((root / "CT").string(), pv.ct, who, "1-{}.dcm");
      std::vector<io::DicomSegment> segs;
      int number = 0;
      for (const auto& [name, mask] : pv.structures) {
        io::DicomSegment s;
        s.number = ++number;
        s.label = name;
        s.mask = mask;
        segs.push_back(std::move(s));
      }
      fs::create_directories(root / "SEG");
      io::write_dicom_seg((root / "SEG" / "1-1.dcm").string(), segs, uid, who);
    }
    out.push_back(std::move(pv));
  }
  return out;
}

}  // namespace livernet::data
