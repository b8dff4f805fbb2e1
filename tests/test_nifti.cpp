// NIfTI-1/-2 reader and writer: round trips, geometry (RAS <-> LPS, qform with qfac, sform), hand-built
// reference files whose header bytes are laid out here from the published offsets (an independent check of
// the reader's offsets and its left/right handling), and bad inputs that must be refused by name.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "ct/nifti.h"
#include "test_util.h"

using namespace livernet;
using namespace livernet::io;
using livernet::testing::error_of;
using livernet::testing::TempDir;

namespace {

// ---- hand-built files ----------------------------------------------------------------------------

template <typename T>
void put(std::vector<unsigned char>& b, std::size_t off, T v, bool swap) {
  unsigned char tmp[sizeof(T)];
  std::memcpy(tmp, &v, sizeof(T));
  if (swap) std::reverse(tmp, tmp + sizeof(T));
  std::memcpy(b.data() + off, tmp, sizeof(T));
}

template <typename T>
std::vector<unsigned char> pack(const std::vector<T>& vals, bool swap = false) {
  std::vector<unsigned char> out(vals.size() * sizeof(T));
  for (std::size_t i = 0; i < vals.size(); ++i) put<T>(out, i * sizeof(T), vals[i], swap);
  return out;
}

// A single-file NIfTI laid out byte by byte from nifti1.h / nifti2.h.
struct RawNifti {
  int version = 1;
  bool swap = false;  // write the other byte order (big-endian on this little-endian host)
  std::array<std::int64_t, 8> dim{3, 4, 3, 2, 1, 1, 1, 1};
  int datatype = 4, bitpix = 16;  // int16
  std::array<double, 8> pixdim{1, 1, 1, 1, 1, 1, 1, 1};
  double vox_offset = -1;  // -1: right after the header and the 4-byte extension flag
  double scl_slope = 1, scl_inter = 0;
  int qform_code = 0, sform_code = 0;
  std::array<double, 3> quatern{0, 0, 0}, qoffset{0, 0, 0};
  std::array<std::array<double, 4>, 3> srow{{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}}};
  std::string magic;                    // "" = the valid one
  std::vector<unsigned char> between;   // bytes between the header and vox_offset (extensions)
  std::vector<unsigned char> data;      // voxel bytes, as given

  std::vector<unsigned char> bytes() const {
    const std::size_t hs = version == 1 ? 348 : 540;
    std::vector<unsigned char> b(hs + 4 + between.size(), 0);
    const double off = vox_offset >= 0 ? vox_offset : static_cast<double>(hs + 4 + between.size());
    if (version == 1) {
      put<std::int32_t>(b, 0, 348, swap);
      for (int a = 0; a < 8; ++a) put<std::int16_t>(b, 40 + 2 * a, static_cast<std::int16_t>(dim[a]), swap);
      put<std::int16_t>(b, 70, static_cast<std::int16_t>(datatype), swap);
      put<std::int16_t>(b, 72, static_cast<std::int16_t>(bitpix), swap);
      for (int a = 0; a < 8; ++a) put<float>(b, 76 + 4 * a, static_cast<float>(pixdim[a]), swap);
      put<float>(b, 108, static_cast<float>(off), swap);
      put<float>(b, 112, static_cast<float>(scl_slope), swap);
      put<float>(b, 116, static_cast<float>(scl_inter), swap);
      std::memcpy(b.data() + 148, "hand-built", 10);
      put<std::int16_t>(b, 252, static_cast<std::int16_t>(qform_code), swap);
      put<std::int16_t>(b, 254, static_cast<std::int16_t>(sform_code), swap);
      for (int c = 0; c < 3; ++c) {
        put<float>(b, 256 + 4 * c, static_cast<float>(quatern[c]), swap);
        put<float>(b, 268 + 4 * c, static_cast<float>(qoffset[c]), swap);
        for (int r = 0; r < 4; ++r) put<float>(b, 280 + 16 * c + 4 * r, static_cast<float>(srow[c][r]), swap);
      }
      std::memcpy(b.data() + 344, magic.empty() ? std::string("n+1\0", 4).data() : magic.data(), 4);
    } else {
      put<std::int32_t>(b, 0, 540, swap);
      std::memcpy(b.data() + 4, magic.empty() ? std::string("n+2\0\r\n\x1a\n", 8).data() : magic.data(), 8);
      put<std::int16_t>(b, 12, static_cast<std::int16_t>(datatype), swap);
      put<std::int16_t>(b, 14, static_cast<std::int16_t>(bitpix), swap);
      for (int a = 0; a < 8; ++a) put<std::int64_t>(b, 16 + 8 * a, dim[a], swap);
      for (int a = 0; a < 8; ++a) put<double>(b, 104 + 8 * a, pixdim[a], swap);
      put<std::int64_t>(b, 168, static_cast<std::int64_t>(off), swap);
      put<double>(b, 176, scl_slope, swap);
      put<double>(b, 184, scl_inter, swap);
      std::memcpy(b.data() + 240, "hand-built", 10);
      put<std::int32_t>(b, 344, qform_code, swap);
      put<std::int32_t>(b, 348, sform_code, swap);
      for (int c = 0; c < 3; ++c) {
        put<double>(b, 352 + 8 * c, quatern[c], swap);
        put<double>(b, 376 + 8 * c, qoffset[c], swap);
        for (int r = 0; r < 4; ++r) put<double>(b, 400 + 32 * c + 8 * r, srow[c][r], swap);
      }
    }
    std::copy(between.begin(), between.end(), b.begin() + static_cast<std::ptrdiff_t>(hs + 4));
    b.insert(b.end(), data.begin(), data.end());
    return b;
  }
};

void write_bytes(const std::string& path, const std::vector<unsigned char>& b, bool gzip) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    if (!b.empty()) {
      ASSERT_EQ(gzwrite(f, b.data(), static_cast<unsigned>(b.size())), static_cast<int>(b.size()));
    }
    ASSERT_EQ(gzclose(f), Z_OK);
  } else {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    ASSERT_TRUE(out.good());
  }
}

std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(in), {});
}

// int16 voxels 0, 1, 2, ... for the default 4x3x2 grid.
std::vector<unsigned char> ramp_int16(std::int64_t n, bool swap = false) {
  std::vector<std::int16_t> v(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::int16_t>(i);
  return pack(v, swap);
}

// ---- grids ---------------------------------------------------------------------------------------

Vec3 normalised(Vec3 v) {
  const double n = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  return {v[0] / n, v[1] / n, v[2] / n};
}

Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}

// An oblique right-handed frame (a rotation by 17 degrees about (1, 2, 3), then 5 about x).
std::array<Vec3, 3> oblique_axes() {
  const Vec3 u = normalised({1, 2, 3});
  const double t = 17 * M_PI / 180, c = std::cos(t), s = std::sin(t);
  std::array<Vec3, 3> ax;
  for (int a = 0; a < 3; ++a) {
    Vec3 e{0, 0, 0};
    e[a] = 1;
    const double d = u[0] * e[0] + u[1] * e[1] + u[2] * e[2];
    const Vec3 x = cross(u, e);
    for (int r = 0; r < 3; ++r) ax[a][r] = e[r] * c + x[r] * s + u[r] * d * (1 - c);
  }
  return ax;
}

void expect_same_grid(const Grid& got, const Grid& want, double tol, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(got.size, want.size);
  for (int a = 0; a < 3; ++a) {
    EXPECT_NEAR(got.spacing[a], want.spacing[a], tol) << "spacing " << a;
    EXPECT_NEAR(got.origin[a], want.origin[a], tol) << "origin " << a;
    for (int r = 0; r < 3; ++r) EXPECT_NEAR(got.axes[a][r], want.axes[a][r], tol) << "axis " << a << " component " << r;
  }
}

// The message names the file and contains `problem`.
void expect_refused(const std::string& msg, const std::string& path, const std::string& problem) {
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find(problem), std::string::npos) << "expected '" << problem << "' in: " << msg;
}

// Writes `f` to dir/name (gzipped for .gz) and expects reading it to be refused with `problem`.
void refused_file(const TempDir& dir, const RawNifti& f, const std::string& name, const std::string& problem) {
  const std::string p = dir / name;
  write_bytes(p, f.bytes(), name.ends_with(".gz"));
  expect_refused(error_of([&] { read_nifti_volume(p); }), p, problem);
}

// A valid 4x3x2 int16 NIfTI-1 image to damage.
RawNifti small_raw_nifti() {
  RawNifti f;
  f.data = ramp_int16(24);
  return f;
}

Grid small_grid() { return Grid{{5, 4, 3}, {0.7, 0.8, 2.5}, {-100.5, 20.25, -300}, oblique_axes()}; }

}  // namespace

// ---- round trips ---------------------------------------------------------------------------------

TEST(NiftiRoundTrip, VersionsCompressionAndDatatypes) {
  TempDir dir;
  struct Case {
    std::string datatype;
    float slope, inter;
  };
  const Case cases[] = {{"int16", 0.5f, -1024.0f}, {"float32", 1.0f, 0.0f}, {"uint8", 2.0f, -100.0f}, {"int16", 1.0f, 0.0f}};
  const Grid g = small_grid();
  for (int version : {1, 2})
    for (const std::string ext : {".nii", ".nii.gz"})
      for (const Case& c : cases) {
        Volume v(g);
        for (std::size_t n = 0; n < v.v.size(); ++n) {
          const double m = static_cast<double>(n);
          if (c.datatype == "int16") v.v[n] = static_cast<float>(c.inter + c.slope * (std::fmod(m * 37, 5000) - 2500));
          else if (c.datatype == "uint8") v.v[n] = static_cast<float>(c.inter + c.slope * std::fmod(m * 7, 256));
          else v.v[n] = static_cast<float>(-1000.25 + 3.5 * m);
        }
        const std::string path = dir / str_cat("v", version, "_", c.datatype, ext);
        NiftiWriteOptions o;
        o.version = version;
        o.datatype = c.datatype;
        o.scl_slope = c.slope;
        o.scl_inter = c.inter;
        write_nifti(path, v, o);
        const auto raw = read_bytes(path);
        ASSERT_GE(raw.size(), 2u);
        EXPECT_EQ(raw[0] == 0x1f && raw[1] == 0x8b, ext == ".nii.gz") << path;
        NiftiInfo info;
        const Volume r = read_nifti_volume(path, &info);
        SCOPED_TRACE(path);
        EXPECT_EQ(info.version, version);
        EXPECT_EQ(info.datatype, c.datatype);
        EXPECT_EQ(info.scl_slope, c.slope);
        EXPECT_EQ(info.scl_inter, c.inter);
        EXPECT_EQ(info.qform_code, 1);
        EXPECT_EQ(info.sform_code, 1);
        EXPECT_TRUE(info.used_sform);
        EXPECT_FALSE(info.no_orientation);
        EXPECT_EQ(info.description, "livernet");
        expect_same_grid(r.grid, g, 1e-5, path);
        EXPECT_EQ(r.v, v.v);
      }
}

TEST(NiftiRoundTrip, Labels) {
  TempDir dir;
  const Grid g = small_grid();
  LabelVolume lab(g);
  for (std::size_t n = 0; n < lab.v.size(); ++n) lab.v[n] = static_cast<std::int32_t>(n % 3);
  for (const std::string dt : {"uint8", "int16", "int32", "float32"})
    for (int version : {1, 2}) {
      const std::string path = dir / str_cat("labels_", dt, "_v", version, ".nii.gz");
      NiftiWriteOptions o;
      o.version = version;
      o.datatype = dt;
      write_nifti(path, lab, o);
      NiftiInfo info;
      const LabelVolume r = read_nifti_labels(path, &info);
      EXPECT_EQ(info.datatype, dt);
      EXPECT_EQ(r.v, lab.v) << path;
      expect_same_grid(r.grid, g, 1e-5, path);
    }
  // Large labels keep their value in int32; as float32 beyond 2^24 they would not, and are refused.
  lab.v[7] = 100000;
  write_nifti(dir / "big.nii", lab, {.datatype = "int32"});
  EXPECT_EQ(read_nifti_labels(dir / "big.nii").v[7], 100000);
  lab.v[7] = 16777217;
  expect_refused(error_of([&] { write_nifti(dir / "f.nii", lab, {.datatype = "float32"}); }), dir / "f.nii",
                 "label 16777217 is not represented exactly as float32");
}

// ---- geometry ------------------------------------------------------------------------------------

TEST(NiftiGeometry, GridsRoundTripThroughQformOnlyAndSformOnly) {
  TempDir dir;
  const std::array<Vec3, 3> ob = oblique_axes();
  const std::array<Vec3, 3> lps_identity{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};  // RAS: a 180-degree turn
  const std::array<Vec3, 3> ras_aligned{{{-1, 0, 0}, {0, -1, 0}, {0, 0, 1}}};
  const std::array<Vec3, 3> flipped{{{1, 0, 0}, {0, 1, 0}, {0, 0, -1}}};       // left-handed
  const std::array<Vec3, 3> oblique_flipped{{ob[1], ob[0], ob[2]}};           // left-handed and oblique
  const std::array<Vec3, 3> sagittal{{{0, 1, 0}, {0, 0, -1}, {-1, 0, 0}}};
  struct G {
    const char* name;
    std::array<Vec3, 3> axes;
    bool left_handed;
  };
  const G grids[] = {{"lps_identity", lps_identity, false}, {"ras_aligned", ras_aligned, false}, {"oblique", ob, false},
                     {"flipped", flipped, true}, {"oblique_flipped", oblique_flipped, true}, {"sagittal", sagittal, false}};
  for (const G& gg : grids)
    for (int version : {1, 2})
      for (bool use_sform : {false, true}) {
        const Grid g = Grid{{4, 3, 2}, {0.68, 0.71, 3.0}, {-87.25, 112.5, -95.75}, gg.axes};
        Volume v(g, -5.0f);
        const std::string path =
            dir / str_cat(gg.name, "_v", version, use_sform ? "_sform" : "_qform", ".nii");
        NiftiWriteOptions o;
        o.version = version;
        o.qform_code = use_sform ? 0 : 1;
        o.sform_code = use_sform ? 2 : 0;
        write_nifti(path, v, o);
        NiftiInfo info;
        const Volume r = read_nifti_volume(path, &info);
        EXPECT_EQ(info.used_sform, use_sform) << path;
        expect_same_grid(r.grid, g, 1e-5, path);
        const auto raw = read_bytes(path);
        float qfac1 = 0;
        double qfac2 = 0;
        if (version == 1) std::memcpy(&qfac1, raw.data() + 76, 4);
        else std::memcpy(&qfac2, raw.data() + 104, 8);
        EXPECT_EQ(version == 1 ? qfac1 : qfac2, gg.left_handed ? -1.0 : 1.0) << path;
      }
}

// Files laid out here byte by byte, with known affines: the expected LPS grids are written out by hand.
TEST(NiftiReference, LitsLikeSformInt16) {
  TempDir dir;
  RawNifti f;  // LiTS-style: sform = diag(-0.7, -0.7, 5): i runs to the patient's left, j posterior
  f.sform_code = 1;
  f.srow = {{{-0.7, 0, 0, 172.9}, {0, -0.7, 0, 179.3}, {0, 0, 5, -368}}};
  f.pixdim = {1, 0.7, 0.7, 5, 1, 1, 1, 1};
  f.scl_slope = 1, f.scl_inter = -1024;
  std::vector<std::int16_t> vals;
  for (int k = 0; k < 2; ++k)
    for (int j = 0; j < 3; ++j)
      for (int i = 0; i < 4; ++i) vals.push_back(static_cast<std::int16_t>(i + 10 * j + 100 * k));
  f.data = pack(vals);
  const std::string path = dir / "volume-0.nii";
  write_bytes(path, f.bytes(), false);
  NiftiInfo info;
  const Volume v = read_nifti_volume(path, &info);
  const Grid want = Grid{{4, 3, 2}, {0.7, 0.7, 5}, {-172.9, -179.3, -368}, {{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}};
  expect_same_grid(v.grid, want, 2e-5, path);
  for (int a = 0; a < 3; ++a) EXPECT_EQ(v.grid.axes[a], want.axes[a]);
  EXPECT_EQ(info.version, 1);
  EXPECT_EQ(info.datatype, "int16");
  EXPECT_EQ(info.description, "hand-built");
  EXPECT_TRUE(info.used_sform);
  EXPECT_EQ(v.at(3, 2, 1), 3 + 20 + 100 - 1024);
  EXPECT_EQ(v.at(1, 0, 0), 1 - 1024);
  EXPECT_EQ(v.at(0, 1, 0), 10 - 1024);
  // The same bytes gzipped, named .nii.gz.
  write_bytes(dir / "volume-0.nii.gz", f.bytes(), true);
  EXPECT_EQ(read_nifti_volume(dir / "volume-0.nii.gz").v, v.v);
}

TEST(NiftiReference, RasOrientedNifti2BigEndianFloat64) {
  TempDir dir;
  RawNifti f;
  f.version = 2;
  f.swap = true;
  f.datatype = 64, f.bitpix = 64;
  f.sform_code = 1;
  f.srow = {{{0.8, 0, 0, -100}, {0, 0.8, 0, -120}, {0, 0, 2.5, 50}}};
  f.qform_code = 1;  // ignored: the sform wins
  f.quatern = {0.3, 0.3, 0.3};
  std::vector<double> vals(24);
  for (std::size_t n = 0; n < vals.size(); ++n) vals[n] = -1000.5 + static_cast<double>(n);
  f.data = pack(vals, true);
  const std::string path = dir / "ras.nii";
  write_bytes(path, f.bytes(), false);
  NiftiInfo info;
  const Volume v = read_nifti_volume(path, &info);
  // RAS +x (towards the patient's right) is LPS -x; RAS +y (anterior) is LPS -y.
  const Grid want = Grid{{4, 3, 2}, {0.8, 0.8, 2.5}, {100, 120, 50}, {{{-1, 0, 0}, {0, -1, 0}, {0, 0, 1}}}};
  expect_same_grid(v.grid, want, 1e-12, path);
  EXPECT_EQ(info.version, 2);
  EXPECT_EQ(info.datatype, "float64");
  EXPECT_TRUE(info.used_sform);
  EXPECT_EQ(v.at(3, 2, 1), -1000.5f + 23);
  // The voxel (i, j, k) sits at LPS origin + i * 0.8 * (-x) ...
  const Vec3 p = v.grid.to_lps(2, 1, 1);
  EXPECT_NEAR(p[0], 100 - 1.6, 1e-12);
  EXPECT_NEAR(p[1], 120 - 0.8, 1e-12);
  EXPECT_NEAR(p[2], 52.5, 1e-12);
}

TEST(NiftiReference, QformWithQfacBothByteOrders) {
  TempDir dir;
  for (bool swap : {false, true})
    for (int version : {1, 2}) {
      RawNifti f;
      f.version = version;
      f.swap = swap;
      f.qform_code = 1;
      f.quatern = {0, 0, std::sqrt(0.5)};  // 90 degrees about z: RAS i -> +y, j -> -x
      f.pixdim = {-1, 0.5, 0.6, 3, 1, 1, 1, 1};  // qfac = -1: k -> -z
      f.qoffset = {10, 20, 30};
      f.data = ramp_int16(24, swap);
      const std::string path = dir / str_cat("q", version, swap ? "be" : "le", ".nii");
      write_bytes(path, f.bytes(), false);
      NiftiInfo info;
      const Volume v = read_nifti_volume(path, &info);
      const Grid want = Grid{{4, 3, 2}, {0.5, 0.6, 3}, {-10, -20, 30}, {{{0, -1, 0}, {1, 0, 0}, {0, 0, -1}}}};
      expect_same_grid(v.grid, want, 1e-6, path);
      EXPECT_FALSE(info.used_sform);
      EXPECT_EQ(info.qform_code, 1);
      for (std::size_t n = 0; n < v.v.size(); ++n) ASSERT_EQ(v.v[n], static_cast<float>(n)) << path;
    }
}

TEST(NiftiReference, AnalyzeStyleNoOrientationAndUnsetSlope) {
  TempDir dir;
  RawNifti f;
  f.pixdim = {0, 2, 3, 4, 1, 1, 1, 1};
  f.scl_slope = 0, f.scl_inter = 55;  // slope 0 = "not set": values are used as stored
  f.data = ramp_int16(24);
  const std::string path = dir / "analyze.nii";
  write_bytes(path, f.bytes(), false);
  NiftiInfo info;
  const Volume v = read_nifti_volume(path, &info);
  EXPECT_TRUE(info.no_orientation);
  EXPECT_FALSE(info.used_sform);
  EXPECT_EQ(info.scl_slope, 1);
  EXPECT_EQ(info.scl_inter, 0);
  const Grid want = Grid{{4, 3, 2}, {2, 3, 4}, {0, 0, 0}, {{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}};
  expect_same_grid(v.grid, want, 0, path);
  EXPECT_EQ(v.at(3, 2, 1), 23);
}

TEST(NiftiReference, EveryNumericDatatype) {
  TempDir dir;
  auto check = [&](int code, int bits, std::vector<unsigned char> data, const std::string& name, float last) {
    RawNifti f;
    f.version = 2;
    f.datatype = code, f.bitpix = bits;
    f.data = std::move(data);
    const std::string path = dir / (name + ".nii");
    write_bytes(path, f.bytes(), false);
    NiftiInfo info;
    const Volume v = read_nifti_volume(path, &info);
    EXPECT_EQ(info.datatype, name);
    EXPECT_EQ(v.v[0], 0) << name;
    EXPECT_EQ(v.v[23], last) << name;
    const LabelVolume l = read_nifti_labels(path);
    EXPECT_EQ(l.v[23], static_cast<std::int32_t>(last)) << name;
  };
  auto ramp = [](auto zero, double last) {
    std::vector<decltype(zero)> v(24, zero);
    v[23] = static_cast<decltype(zero)>(last);
    return pack(v);
  };
  check(2, 8, ramp(std::uint8_t{0}, 250), "uint8", 250);
  check(256, 8, ramp(std::int8_t{0}, -120), "int8", -120);
  check(4, 16, ramp(std::int16_t{0}, -32000), "int16", -32000);
  check(512, 16, ramp(std::uint16_t{0}, 65000), "uint16", 65000);
  check(8, 32, ramp(std::int32_t{0}, -2000000), "int32", -2000000);
  check(768, 32, ramp(std::uint32_t{0}, 3000000), "uint32", 3000000);
  check(1024, 64, ramp(std::int64_t{0}, -3000), "int64", -3000);
  check(1280, 64, ramp(std::uint64_t{0}, 3000), "uint64", 3000);
  check(16, 32, ramp(0.0f, -1024), "float32", -1024);
  check(64, 64, ramp(0.0, 3071), "float64", 3071);
}

TEST(NiftiReference, ExtensionsSingleTimePointAndSniffedCompression) {
  TempDir dir;
  RawNifti f;
  f.between = std::vector<unsigned char>(32, 0);  // an extension block after the flag
  f.dim = {4, 4, 3, 2, 1, 1, 1, 1};               // 4-D with one time point
  f.data = ramp_int16(24);
  // gzip content under a .nii name and plain content under a .nii.gz name are both read.
  write_bytes(dir / "gz_named_plain.nii", f.bytes(), true);
  write_bytes(dir / "plain_named_gz.nii.gz", f.bytes(), false);
  for (const std::string name : {"gz_named_plain.nii", "plain_named_gz.nii.gz"}) {
    const Volume v = read_nifti_volume(dir / name);
    EXPECT_EQ(v.grid.size, (std::array<std::int64_t, 3>{4, 3, 2})) << name;
    EXPECT_EQ(v.at(3, 2, 1), 23) << name;
  }
}

// ---- bad inputs ----------------------------------------------------------------------------------

TEST(NiftiErrors, TruncatedHeaderAndData) {
  TempDir dir;
  RawNifti f;
  f.data = ramp_int16(24);
  auto b = f.bytes();

  const std::string hdr = dir / "short_header.nii";
  write_bytes(hdr, std::vector<unsigned char>(b.begin(), b.begin() + 200), false);
  expect_refused(error_of([&] { read_nifti_volume(hdr); }), hdr, "truncated NIfTI-1 header (200 of 348 bytes)");

  const std::string empty = dir / "empty.nii";
  write_bytes(empty, {}, false);
  expect_refused(error_of([&] { read_nifti_volume(empty); }), empty, "empty file");

  b.resize(b.size() - 38);  // 10 of the 48 data bytes remain
  for (bool gz : {false, true}) {
    const std::string p = dir / (gz ? "short_data.nii.gz" : "short_data.nii");
    write_bytes(p, b, gz);
    expect_refused(error_of([&] { read_nifti_volume(p); }), p,
                   "truncated: the header declares 4x3x2 int16 voxels (48 bytes) but only 10 follow");
  }

  // A gzip stream cut short (the compressed bytes themselves end early).
  RawNifti big;
  big.dim = {3, 64, 64, 16, 1, 1, 1, 1};
  std::vector<std::int16_t> noise(64 * 64 * 16);
  std::uint32_t s = 1;
  for (auto& x : noise) x = static_cast<std::int16_t>((s = s * 1664525u + 1013904223u) >> 16);
  big.data = pack(noise);
  const std::string whole = dir / "whole.nii.gz", cut = dir / "cut.nii.gz";
  write_bytes(whole, big.bytes(), true);
  auto gz = read_bytes(whole);
  gz.resize(gz.size() / 2);
  write_bytes(cut, gz, false);
  expect_refused(error_of([&] { read_nifti_volume(cut); }), cut, "truncated: the header declares 64x64x16 int16 voxels");
}

TEST(NiftiErrors, MagicAndHeaderSize) {
  TempDir dir;
  RawNifti f;
  f.data = ramp_int16(24);
  f.magic = std::string("n+3\0", 4);
  const std::string p = dir / "magic.nii";
  write_bytes(p, f.bytes(), false);
  expect_refused(error_of([&] { read_nifti_volume(p); }), p, "bad NIfTI-1 magic 'n+3\\x00'");

  f.magic = std::string("ni1\0", 4);
  write_bytes(p, f.bytes(), false);
  expect_refused(error_of([&] { read_nifti_volume(p); }), p, "convert it to a single .nii file");

  RawNifti f2;
  f2.version = 2;
  f2.data = ramp_int16(24);
  f2.magic = std::string("n+2\0\n\x1a\n\0", 8);  // the CR lost to a text-mode transfer
  write_bytes(p, f2.bytes(), false);
  expect_refused(error_of([&] { read_nifti_volume(p); }), p, "damaged NIfTI-2 signature");

  const std::string hdr = dir / "scan.hdr";
  write_bytes(hdr, f.bytes(), false);
  expect_refused(error_of([&] { read_nifti_volume(hdr); }), hdr, ".hdr/.img pairs are not supported");

  const std::string junk = dir / "junk.nii";
  write_bytes(junk, std::vector<unsigned char>(400, 7), false);
  expect_refused(error_of([&] { read_nifti_volume(junk); }), junk, "not a NIfTI-1 or NIfTI-2 file (sizeof_hdr is 117901063");

  const std::string missing = dir / "missing.nii";
  expect_refused(error_of([&] { read_nifti_volume(missing); }), missing, "cannot open");
}

TEST(NiftiErrors, Dimensions) {
  TempDir dir;
  const RawNifti f = small_raw_nifti();
  RawNifti d7 = f;
  d7.dim = {7, 4, 3, 2, 1, 1, 1, 1};
  refused_file(dir, d7, "d7.nii", "a 7-D image (dim[0] = 7");
  RawNifti d2 = f;
  d2.dim = {2, 4, 3, 1, 1, 1, 1, 1};
  refused_file(dir, d2, "d2.nii", "a 2-D image");
  RawNifti zero = f;
  zero.dim = {3, 0, 3, 2, 1, 1, 1, 1};
  refused_file(dir, zero, "zero.nii", "dim[1] = 0 is not a positive size");
  RawNifti neg = f;
  neg.dim = {3, 4, -3, 2, 1, 1, 1, 1};
  refused_file(dir, neg, "neg.nii", "dim[2] = -3 is not a positive size");
  RawNifti t2 = f;
  t2.dim = {4, 4, 3, 2, 2, 1, 1, 1};
  refused_file(dir, t2, "t2.nii", "a 4-D series of 2 time points (dim = 4x3x2x2)");
  RawNifti c5 = f;
  c5.dim = {5, 4, 3, 2, 1, 3, 1, 1};
  refused_file(dir, c5, "c5.nii", "a 5-D image with 3 values per voxel");

  // Huge declared sizes are refused from the header alone (nothing near their size is allocated).
  RawNifti huge = f;
  huge.version = 2;
  huge.dim = {3, 60000, 60000, 60000, 1, 1, 1, 1};
  refused_file(dir, huge, "huge.nii", "declares 60000x60000x60000 voxels, more than the 2^31 allowed");
  refused_file(dir, huge, "huge.nii.gz", "declares 60000x60000x60000 voxels, more than the 2^31 allowed");
  RawNifti huge1 = f;
  huge1.dim = {3, 30000, 30000, 30000, 1, 1, 1, 1};
  refused_file(dir, huge1, "huge1.nii", "more than the 2^31 allowed");
  RawNifti overflow = huge;
  overflow.dim = {3, std::int64_t{1} << 40, std::int64_t{1} << 40, std::int64_t{1} << 40, 1, 1, 1, 1};
  refused_file(dir, overflow, "overflow.nii", "more than the 2^31 allowed");
  // Within the voxel limit but 8 GB more than the file holds: plain files are checked against their
  // size, gzip streams end early.
  RawNifti big = f;
  big.datatype = 16, big.bitpix = 32;
  big.dim = {3, 2000, 2000, 500, 1, 1, 1, 1};
  big.data.resize(100);
  refused_file(dir, big, "big.nii", "declares 2000x2000x500 float32 voxels (8000000000 bytes) but only 100 follow");
  refused_file(dir, big, "big.nii.gz", "declares 2000x2000x500 float32 voxels (8000000000 bytes) but only 100 follow in the gzip stream");
}

TEST(NiftiErrors, DatatypesAndOffsets) {
  TempDir dir;
  const RawNifti f = small_raw_nifti();
  RawNifti cx = f;
  cx.datatype = 32, cx.bitpix = 64;
  refused_file(dir, cx, "complex.nii", "unsupported datatype complex64 (code 32)");
  RawNifti rgb = f;
  rgb.datatype = 128, rgb.bitpix = 24;
  refused_file(dir, rgb, "rgb.nii", "unsupported datatype RGB24 (code 128)");
  RawNifti unknown = f;
  unknown.datatype = 3;
  refused_file(dir, unknown, "unknown.nii", "unknown datatype code 3");
  RawNifti bits = f;
  bits.bitpix = 8;
  refused_file(dir, bits, "bitpix.nii", "bitpix is 8 but datatype int16 has 16 bits per voxel");
  RawNifti far = f;
  far.vox_offset = 100000;
  refused_file(dir, far, "far.nii", "vox_offset 100000 is beyond the end of the file");
  refused_file(dir, far, "far.nii.gz", "vox_offset 100000 is beyond the end of the decompressed data");
  RawNifti inside = f;
  inside.vox_offset = 100;
  refused_file(dir, inside, "inside.nii", "vox_offset 100 points inside the header");
  RawNifti frac = f;
  frac.vox_offset = 352.5;
  refused_file(dir, frac, "frac.nii", "vox_offset 352.5 is not a whole number of bytes");
}

TEST(NiftiErrors, GeometryAndValues) {
  TempDir dir;
  RawNifti f;
  f.data = ramp_int16(24);

  RawNifti shear = f;
  shear.sform_code = 1;
  shear.srow = {{{-0.7, 0.2, 0, 10}, {0, -0.7, 0, 10}, {0, 0, 5, 10}}};
  std::string p = dir / "shear.nii";
  write_bytes(p, shear.bytes(), false);
  expect_refused(error_of([&] { read_nifti_volume(p); }), p, "the sform is not orthogonal: index axes 0 and 1");

  RawNifti zero_col = f;
  zero_col.sform_code = 1;
  zero_col.srow = {{{0, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}}};
  p = dir / "zero_col.nii";
  write_bytes(p, zero_col.bytes(), false);
  expect_refused(error_of([&] { read_nifti_volume(p); }), p, "has a zero column 0");

  RawNifti badq = f;
  badq.qform_code = 1;
  badq.quatern = {0.9, 0.9, 0.9};
  p = dir / "badq.nii";
  write_bytes(p, badq.bytes(), false);
  expect_refused(error_of([&] { read_nifti_volume(p); }), p, "is not a rotation");

  RawNifti badpix = f;
  badpix.qform_code = 1;
  badpix.pixdim = {1, 0.7, 0, 5, 1, 1, 1, 1};
  p = dir / "badpix.nii";
  write_bytes(p, badpix.bytes(), false);
  expect_refused(error_of([&] { read_nifti_volume(p); }), p, "pixdim[1..3] = 0.7, 0, 5 is not a positive voxel spacing");

  // Non-finite HU: the file and the first bad voxel.
  RawNifti fl = f;
  fl.datatype = 16, fl.bitpix = 32;
  std::vector<float> vals(24, 1.0f);
  vals[3 + 4 * 0 + 12 * 1] = std::numeric_limits<float>::quiet_NaN();  // voxel (3, 0, 1)
  vals[20] = std::numeric_limits<float>::infinity();
  fl.data = pack(vals);
  p = dir / "nan.nii.gz";
  write_bytes(p, fl.bytes(), true);
  expect_refused(error_of([&] { read_nifti_volume(p); }), p, "voxel (3, 0, 1) is NaN; non-finite HU values are not accepted");
  vals[15] = 1;
  fl.data = pack(vals);
  write_bytes(p, fl.bytes(), true);
  expect_refused(error_of([&] { read_nifti_volume(p); }), p, "voxel (0, 2, 1) is +inf");

  // Labels: non-integers (stored, or made by scl) are refused with the first voxel.
  vals.assign(24, 2.0f);
  vals[9] = 2.5f;  // voxel (1, 2, 0)
  fl.data = pack(vals);
  p = dir / "labels.nii";
  write_bytes(p, fl.bytes(), false);
  expect_refused(error_of([&] { read_nifti_labels(p); }), p, "voxel (1, 2, 0) has the non-integer value 2.5; a label map must hold integers");
  RawNifti scaled = f;
  scaled.scl_slope = 0.5;
  p = dir / "scaled_labels.nii";
  write_bytes(p, scaled.bytes(), false);
  expect_refused(error_of([&] { read_nifti_labels(p); }), p, "voxel (1, 0, 0) has the non-integer value 0.5");
  RawNifti wide = f;
  wide.datatype = 768, wide.bitpix = 32;
  wide.data = pack(std::vector<std::uint32_t>(24, 3000000000u));
  p = dir / "wide_labels.nii";
  write_bytes(p, wide.bytes(), false);
  expect_refused(error_of([&] { read_nifti_labels(p); }), p, "voxel (0, 0, 0) has the label 3000000000, which does not fit 32 bits");
}

TEST(NiftiErrors, WriterRefusals) {
  TempDir dir;
  Volume v(small_grid(), 0.0f);
  v.at(2, 1, 0) = 40000;
  const std::string p = dir / "out.nii";
  expect_refused(error_of([&] { write_nifti(p, v, {}); }), p,
                 "voxel (2, 1, 0) value 40000 does not fit int16 (-32768..32767) with scl_slope 1 and scl_inter 0");
  EXPECT_FALSE(std::filesystem::exists(p));
  // With a slope it fits: (40000 - 0) / 2 = 20000.
  write_nifti(p, v, {.scl_slope = 2});
  EXPECT_EQ(read_nifti_volume(p).at(2, 1, 0), 40000);
  v.at(2, 1, 0) = -1;
  expect_refused(error_of([&] { write_nifti(dir / "u8.nii", v, {.datatype = "uint8"}); }), dir / "u8.nii",
                 "value -1 does not fit uint8 (0..255)");
  v.at(2, 1, 0) = std::numeric_limits<float>::quiet_NaN();
  expect_refused(error_of([&] { write_nifti(dir / "nan.nii", v, {.datatype = "float32"}); }), dir / "nan.nii",
                 "voxel (2, 1, 0) is NaN; only finite values can be written");
  v.at(2, 1, 0) = 0;
  expect_refused(error_of([&] { write_nifti(dir / "c.nii", v, {.datatype = "complex64"}); }), dir / "c.nii",
                 "cannot write datatype 'complex64'");
  expect_refused(error_of([&] { write_nifti(dir / "s.nii", v, {.scl_slope = 0}); }), dir / "s.nii", "the slope must be finite and non-zero");
  expect_refused(error_of([&] { write_nifti(dir / "v3.nii", v, {.version = 3}); }), dir / "v3.nii", "NIfTI version 3");
  Volume wide(Grid{{40000, 1, 1}, {1, 1, 1}, {0, 0, 0}, {{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}});
  expect_refused(error_of([&] { write_nifti(dir / "wide.nii", wide, {}); }), dir / "wide.nii", "does not fit NIfTI-1");
  write_nifti(dir / "wide.nii", wide, {.version = 2});
  EXPECT_EQ(read_nifti_volume(dir / "wide.nii").grid.size[0], 40000);
}
