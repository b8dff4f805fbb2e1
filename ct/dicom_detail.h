// What ct/dicom.cpp (the readers) and ct/dicom_write.cpp (the writers) share: DCMTK access, geometry
// and slice-header helpers. Internal to ct/: not part of the DICOM API (ct/dicom.h).
#pragma once

// clang-format off
#include "dcmtk/config/osconfig.h"  // first, as DCMTK requires
// clang-format on
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmdata/dcrledrg.h"
#include "dcmtk/dcmjpeg/djdecode.h"
#include "dcmtk/dcmjpls/djdecode.h"
#include "dcmtk/oflog/oflog.h"
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include "core/error.h"
#include "io/hdf5.h"  // write_file_atomically

#include "ct/dicom.h"

namespace livernet::io::dicom_detail {

namespace fs = std::filesystem;

// ---- Small geometry helpers ------------------------------------------------------------------------

inline double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
inline Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
inline double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
inline Vec3 sub(const Vec3& a, const Vec3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
inline Vec3 scaled(const Vec3& a, double s) { return {a[0] * s, a[1] * s, a[2] * s}; }
inline Vec3 unit(const Vec3& a) { return scaled(a, 1.0 / norm(a)); }

inline std::string num(double v, int decimals = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// "z=-12.50" for a position along `normal`, named after (and signed like) the patient axis the normal is
// closest to, so an axial series reports its patient z.
inline std::string position_label(const Vec3& normal, const Vec3& p) {
  int a = 0;
  for (int c = 1; c < 3; ++c)
    if (std::abs(normal[c]) > std::abs(normal[a])) a = c;
  const double s = normal[a] < 0 ? -1.0 : 1.0;
  return str_cat("xyz"[a], "=", num(s * dot(normal, p)));
}

inline std::string file_name(const std::string& path) { return fs::path(path).filename().string(); }

// ---- DCMTK access ------------------------------------------------------------------------------------

// DCMTK logs its own warnings and errors to stderr ("E: ... premature end of stream"); our errors already
// name the file and the problem, so its logger stays quiet unless LIVERNET_DCMTK_LOG is set.
inline void quiet_dcmtk() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (!std::getenv("LIVERNET_DCMTK_LOG")) OFLog::configure(OFLogger::OFF_LOG_LEVEL);
  });
}

inline void register_codecs() {
  static std::once_flag once;
  std::call_once(once, [] {
    DcmRLEDecoderRegistration::registerCodecs();
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
  });
}

inline std::string trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && s[b] == ' ') ++b;
  return s.substr(b);
}

inline std::string get_str(DcmItem* item, const DcmTagKey& tag) {
  OFString s;
  if (item != nullptr && item->findAndGetOFStringArray(tag, s).good()) return trim(s.c_str());
  return "";
}

inline bool get_long(DcmItem* item, const DcmTagKey& tag, long& v) {
  long int x = 0;
  if (item == nullptr || item->findAndGetLongInt(tag, x).bad()) return false;
  v = x;
  return true;
}

// n values of a DS / FD attribute, all finite; false when absent or short.
template <std::size_t N>
bool get_doubles(DcmItem* item, const DcmTagKey& tag, std::array<double, N>& out) {
  if (item == nullptr) return false;
  for (std::size_t i = 0; i < N; ++i) {
    Float64 v = 0;
    if (item->findAndGetFloat64(tag, v, i).bad() || !std::isfinite(v)) return false;
    out[i] = v;
  }
  return true;
}

inline DcmItem* seq_item(DcmItem* item, const DcmTagKey& tag, long index = 0) {
  DcmItem* sub = nullptr;
  if (item == nullptr || item->findAndGetSequenceItem(tag, sub, index).bad()) return nullptr;
  return sub;
}

// Whether a file looks like DICOM: the "DICM" magic after the 128-byte preamble, or (a bare dataset) a
// first tag in group 0002 or 0008.
inline bool looks_like_dicom(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  unsigned char b[132] = {};
  f.read(reinterpret_cast<char*>(b), sizeof b);
  const auto n = f.gcount();
  if (n == 132 && std::memcmp(b + 128, "DICM", 4) == 0) return true;
  if (n >= 8) {
    const unsigned group = b[0] | (b[1] << 8);
    return group == 0x0002 || group == 0x0008;
  }
  return false;
}

inline bool ignored_name(const std::string& name) {
  if (name.empty() || name[0] == '.') return true;
  std::string up = name;
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return up == "DICOMDIR";
}

// The DICOM-looking regular files directly in `dir`, sorted by name.
inline std::vector<std::string> dicom_files_in(const std::string& dir) {
  std::error_code ec;
  LN_CHECK(fs::is_directory(dir, ec), dir, ": no such folder");
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file(ec) || ignored_name(e.path().filename().string())) continue;
    // An empty file among the slices is most likely a failed copy: name it rather than lose a slice.
    std::error_code size_ec;
    LN_CHECK(e.file_size(size_ec) != 0 || size_ec, e.path().string(),
             ": empty file (0 bytes) in a DICOM folder; copy it again or remove it");
    if (looks_like_dicom(e.path())) out.push_back(e.path().string());
  }
  LN_CHECK(!ec, dir, ": cannot list the folder (", ec.message(), ")");
  std::sort(out.begin(), out.end());
  return out;
}

// Loads a file. headers_only leaves values over 1 KiB (the pixel data) on disk, unread; DCMTK loads them
// when asked. (loadFileUntilTag would also do, but logs a warning per file.)
inline void load(DcmFileFormat& ff, const std::string& path, bool headers_only) {
  const OFCondition c = ff.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, headers_only ? 1024 : DCM_MaxReadLength);
  LN_CHECK(c.good(), path, ": not a readable DICOM file (DCMTK: ", c.text(), "; truncated or corrupt?)");
}

inline std::string sop_class_of(DcmFileFormat& ff) {
  std::string s = get_str(ff.getDataset(), DCM_SOPClassUID);
  if (s.empty()) s = get_str(ff.getMetaInfo(), DCM_MediaStorageSOPClassUID);
  return s;
}

// ---- Image headers -----------------------------------------------------------------------------------

struct PixelFormat {
  long rows = 0, cols = 0, bits_allocated = 0, bits_stored = 0, high_bit = -1, pixel_rep = 0, samples = 1,
       frames = 1;
  std::string photometric;
};

inline PixelFormat pixel_format(DcmItem* ds) {
  PixelFormat f;
  get_long(ds, DCM_Rows, f.rows);
  get_long(ds, DCM_Columns, f.cols);
  get_long(ds, DCM_BitsAllocated, f.bits_allocated);
  if (!get_long(ds, DCM_BitsStored, f.bits_stored)) f.bits_stored = f.bits_allocated;
  if (!get_long(ds, DCM_HighBit, f.high_bit)) f.high_bit = f.bits_stored - 1;
  get_long(ds, DCM_PixelRepresentation, f.pixel_rep);
  if (!get_long(ds, DCM_SamplesPerPixel, f.samples)) f.samples = 1;
  if (!get_long(ds, DCM_NumberOfFrames, f.frames)) f.frames = 1;
  f.photometric = get_str(ds, DCM_PhotometricInterpretation);
  return f;
}

// Refuses what the slice readers do not support.
inline void check_slice_format(const PixelFormat& f, const std::string& path) {
  LN_CHECK(f.rows >= 1 && f.cols >= 1, path, ": no Rows/Columns");
  LN_CHECK(f.frames <= 1, path, ": a multiframe image (", f.frames,
           " frames, e.g. enhanced CT) is not supported; export the series as one file per slice");
  LN_CHECK(f.samples == 1, path, ": ", f.samples, " samples per pixel (colour) is not supported");
  LN_CHECK(f.photometric == "MONOCHROME2" || f.photometric == "MONOCHROME1" || f.photometric.empty(), path,
           ": photometric interpretation ", printable(f.photometric), " is not supported (MONOCHROME1/2 only)");
  LN_CHECK(f.bits_allocated == 8 || f.bits_allocated == 16, path, ": ", f.bits_allocated,
           " bits allocated per pixel is not supported (8 or 16)");
  LN_CHECK(f.bits_stored >= 1 && f.bits_stored <= f.bits_allocated && f.high_bit >= f.bits_stored - 1 &&
               f.high_bit < f.bits_allocated,
           path, ": inconsistent BitsStored ", f.bits_stored, " / HighBit ", f.high_bit);
  LN_CHECK(f.pixel_rep == 0 || f.pixel_rep == 1, path, ": PixelRepresentation ", f.pixel_rep);
}

// The geometry of one 2D image.
struct Plane {
  long rows = 0, cols = 0;
  Vec3 row_dir{}, col_dir{};  // IOP[0..2] (i grows), IOP[3..5] (j grows), normalised
  double ps_row = 0, ps_col = 0;  // PixelSpacing[0] (between rows, along j), [1] (between columns, along i)
  Vec3 ipp{};
};

// Orientation and pixel spacing from `iop_item` / `ps_item`, position from `ipp_item`.
inline Plane plane_of(DcmItem* iop_item, DcmItem* ps_item, DcmItem* ipp_item, long rows, long cols, const std::string& what) {
  Plane p;
  p.rows = rows;
  p.cols = cols;
  std::array<double, 6> iop{};
  LN_CHECK(get_doubles(iop_item, DCM_ImageOrientationPatient, iop), what, ": no valid ImageOrientationPatient");
  const Vec3 r{iop[0], iop[1], iop[2]}, c{iop[3], iop[4], iop[5]};
  LN_CHECK(std::abs(norm(r) - 1) < 1e-2 && std::abs(norm(c) - 1) < 1e-2 && std::abs(dot(r, c)) < 1e-3, what,
           ": ImageOrientationPatient is not two orthogonal unit vectors");
  p.row_dir = unit(r);
  p.col_dir = unit(c);
  std::array<double, 2> ps{};
  LN_CHECK(get_doubles(ps_item, DCM_PixelSpacing, ps) && ps[0] > 0 && ps[1] > 0, what, ": no valid PixelSpacing");
  p.ps_row = ps[0];
  p.ps_col = ps[1];
  std::array<double, 3> ipp{};
  LN_CHECK(get_doubles(ipp_item, DCM_ImagePositionPatient, ipp), what, ": no valid ImagePositionPatient");
  p.ipp = {ipp[0], ipp[1], ipp[2]};
  return p;
}

inline bool close_vec(const Vec3& a, const Vec3& b, double tol) {
  return std::abs(a[0] - b[0]) <= tol && std::abs(a[1] - b[1]) <= tol && std::abs(a[2] - b[2]) <= tol;
}
inline bool close_spacing(double a, double b) { return std::abs(a - b) <= 1e-3 * std::max(1.0, std::abs(a)); }

// The CT slice an image lies on, after checking its in-plane grid; errors start with
// "mask and volume grids differ: <what>".
inline std::int64_t place_on_grid(const Grid& ct, const Plane& p, const std::string& what) {
  const std::string pre = "mask and volume grids differ: " + what;
  LN_CHECK(p.cols == ct.size[0] && p.rows == ct.size[1], pre, " has ", p.cols, "x", p.rows, " pixels, the volume ",
           ct.size[0], "x", ct.size[1]);
  LN_CHECK(close_spacing(p.ps_col, ct.spacing[0]) && close_spacing(p.ps_row, ct.spacing[1]), pre,
           " has pixels of ", num(p.ps_col, 3), "x", num(p.ps_row, 3), " mm, the volume ", num(ct.spacing[0], 3), "x",
           num(ct.spacing[1], 3), " mm");
  LN_CHECK(close_vec(p.row_dir, ct.axes[0], 1e-3) && close_vec(p.col_dir, ct.axes[1], 1e-3), pre,
           " has another orientation (ImageOrientationPatient)");
  const Vec3 idx = ct.to_index(p.ipp);
  LN_CHECK(std::abs(idx[0]) <= 0.1 && std::abs(idx[1]) <= 0.1, pre, " is shifted in-plane by ",
           num(std::hypot(idx[0] * ct.spacing[0], idx[1] * ct.spacing[1])), " mm");
  const double k = std::round(idx[2]);
  LN_CHECK(std::abs(idx[2] - k) <= 0.25 && k >= 0 && k < static_cast<double>(ct.size[2]), pre, " at ",
           position_label(ct.axes[2], p.ipp), " mm lies on no slice of the volume (",
           position_label(ct.axes[2], ct.to_lps(0, 0, 0)), " to ",
           position_label(ct.axes[2], ct.to_lps(0, 0, static_cast<double>(ct.size[2] - 1))), " mm every ",
           num(ct.spacing[2]), " mm)");
  return static_cast<std::int64_t>(k);
}

// The decoded (uncompressed) pixel bytes of a fully loaded dataset, at least `need` of them.
inline const Uint8* pixel_bytes(DcmDataset* ds, const std::string& path, std::size_t need) {
  const E_TransferSyntax xfer = ds->getOriginalXfer();
  if (DcmXfer(xfer).isEncapsulated()) {
    register_codecs();
    const OFCondition c = ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
    LN_CHECK(c.good() && ds->canWriteXfer(EXS_LittleEndianExplicit), path, ": cannot decode its ",
             DcmXfer(xfer).getXferName(), " pixel data (", c.text(), ")");
  }
  DcmElement* el = nullptr;
  LN_CHECK(ds->findAndGetElement(DCM_PixelData, el).good() && el != nullptr, path, ": no pixel data");
  Uint8* bytes = nullptr;
  const OFCondition c = el->getUint8Array(bytes);
  LN_CHECK(c.good(), path, ": cannot read the pixel data (", c.text(), "; truncated file?)");
  const std::size_t have = el->getLength();
  LN_CHECK(bytes != nullptr && have >= need, path, ": the pixel data holds ", have, " bytes, ", need,
           " expected (truncated file?)");
  return bytes;
}

// The stored values of a single-frame image (masked to BitsStored, sign-extended when signed), from a
// fully loaded dataset.
inline std::vector<std::int32_t> stored_values(DcmDataset* ds, const std::string& path) {
  PixelFormat f = pixel_format(ds);
  check_slice_format(f, path);
  const std::size_t n = static_cast<std::size_t>(f.rows) * static_cast<std::size_t>(f.cols);
  const std::size_t bytes_per = static_cast<std::size_t>(f.bits_allocated / 8);
  const Uint8* b = pixel_bytes(ds, path, n * bytes_per);
  f = pixel_format(ds);  // a decoder may have rewritten the attributes
  check_slice_format(f, path);
  const int shift = static_cast<int>(f.high_bit + 1 - f.bits_stored);
  const std::uint32_t mask = f.bits_stored >= 32 ? 0xffffffffu : ((1u << f.bits_stored) - 1u);
  const std::uint32_t sign = 1u << (f.bits_stored - 1);
  std::vector<std::int32_t> out(n);
  for (std::size_t p = 0; p < n; ++p) {
    // Explicit/implicit VR Little Endian on a little-endian host: the bytes are in file order.
    std::uint32_t raw = bytes_per == 1 ? b[p] : static_cast<std::uint32_t>(b[2 * p] | (b[2 * p + 1] << 8));
    raw = (raw >> shift) & mask;
    std::int32_t v = static_cast<std::int32_t>(raw);
    if (f.pixel_rep == 1 && (raw & sign)) v -= static_cast<std::int32_t>(mask) + 1;
    out[p] = v;
  }
  return out;
}

// What the series reader needs from each slice's header.
struct SliceHeader {
  std::string path, series_uid, study_uid, for_uid, modality, sop_class;
  PixelFormat format;
  Plane plane;
  long instance = 0;
  bool has_instance = false;
};

inline bool is_image_object(DcmFileFormat& ff) {
  const std::string sop = sop_class_of(ff);
  if (sop == UID_MediaStorageDirectoryStorage || sop == UID_SegmentationStorage) return false;
  long rows = 0;
  return get_long(ff.getDataset(), DCM_Rows, rows);
}

inline SliceHeader slice_header(DcmFileFormat& ff, const std::string& path) {
  DcmDataset* ds = ff.getDataset();
  SliceHeader h;
  h.path = path;
  h.series_uid = get_str(ds, DCM_SeriesInstanceUID);
  h.study_uid = get_str(ds, DCM_StudyInstanceUID);
  h.for_uid = get_str(ds, DCM_FrameOfReferenceUID);
  h.modality = get_str(ds, DCM_Modality);
  h.sop_class = sop_class_of(ff);
  LN_CHECK(h.sop_class != UID_EnhancedCTImageStorage, path,
           ": enhanced (multiframe) CT is not supported; export the series as one file per slice");
  h.format = pixel_format(ds);
  check_slice_format(h.format, path);
  h.plane = plane_of(ds, ds, ds, h.format.rows, h.format.cols, path);
  h.has_instance = get_long(ds, DCM_InstanceNumber, h.instance);
  return h;
}

}  // namespace livernet::io::dicom_detail
