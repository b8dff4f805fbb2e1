#include "ct/dicom.h"

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

namespace livernet::io {

namespace fs = std::filesystem;

namespace {

// ---- Small geometry helpers ------------------------------------------------------------------------

double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
Vec3 sub(const Vec3& a, const Vec3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
Vec3 scaled(const Vec3& a, double s) { return {a[0] * s, a[1] * s, a[2] * s}; }
Vec3 unit(const Vec3& a) { return scaled(a, 1.0 / norm(a)); }

std::string num(double v, int decimals = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// "z=-12.50" for a position along `normal`, named after (and signed like) the patient axis the normal is
// closest to, so an axial series reports its patient z.
std::string position_label(const Vec3& normal, const Vec3& p) {
  int a = 0;
  for (int c = 1; c < 3; ++c)
    if (std::abs(normal[c]) > std::abs(normal[a])) a = c;
  const double s = normal[a] < 0 ? -1.0 : 1.0;
  return str_cat("xyz"[a], "=", num(s * dot(normal, p)));
}

std::string file_name(const std::string& path) { return fs::path(path).filename().string(); }

// ---- DCMTK access ------------------------------------------------------------------------------------

// DCMTK logs its own warnings and errors to stderr ("E: ... premature end of stream"); our errors already
// name the file and the problem, so its logger stays quiet unless LIVERNET_DCMTK_LOG is set.
void quiet_dcmtk() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (!std::getenv("LIVERNET_DCMTK_LOG")) OFLog::configure(OFLogger::OFF_LOG_LEVEL);
  });
}

void register_codecs() {
  static std::once_flag once;
  std::call_once(once, [] {
    DcmRLEDecoderRegistration::registerCodecs();
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
  });
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && s[b] == ' ') ++b;
  return s.substr(b);
}

std::string get_str(DcmItem* item, const DcmTagKey& tag) {
  OFString s;
  if (item != nullptr && item->findAndGetOFStringArray(tag, s).good()) return trim(s.c_str());
  return "";
}

bool get_long(DcmItem* item, const DcmTagKey& tag, long& v) {
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

DcmItem* seq_item(DcmItem* item, const DcmTagKey& tag, long index = 0) {
  DcmItem* sub = nullptr;
  if (item == nullptr || item->findAndGetSequenceItem(tag, sub, index).bad()) return nullptr;
  return sub;
}

// Whether a file looks like DICOM: the "DICM" magic after the 128-byte preamble, or (a bare dataset) a
// first tag in group 0002 or 0008.
bool looks_like_dicom(const fs::path& p) {
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

bool ignored_name(const std::string& name) {
  if (name.empty() || name[0] == '.') return true;
  std::string up = name;
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return up == "DICOMDIR";
}

// The DICOM-looking regular files directly in `dir`, sorted by name.
std::vector<std::string> dicom_files_in(const std::string& dir) {
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
void load(DcmFileFormat& ff, const std::string& path, bool headers_only) {
  const OFCondition c = ff.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, headers_only ? 1024 : DCM_MaxReadLength);
  LN_CHECK(c.good(), path, ": not a readable DICOM file (DCMTK: ", c.text(), "; truncated or corrupt?)");
}

std::string sop_class_of(DcmFileFormat& ff) {
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

PixelFormat pixel_format(DcmItem* ds) {
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
void check_slice_format(const PixelFormat& f, const std::string& path) {
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
Plane plane_of(DcmItem* iop_item, DcmItem* ps_item, DcmItem* ipp_item, long rows, long cols, const std::string& what) {
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

bool close_vec(const Vec3& a, const Vec3& b, double tol) {
  return std::abs(a[0] - b[0]) <= tol && std::abs(a[1] - b[1]) <= tol && std::abs(a[2] - b[2]) <= tol;
}
bool close_spacing(double a, double b) { return std::abs(a - b) <= 1e-3 * std::max(1.0, std::abs(a)); }

// The CT slice an image lies on, after checking its in-plane grid; errors start with
// "mask and volume grids differ: <what>".
std::int64_t place_on_grid(const Grid& ct, const Plane& p, const std::string& what) {
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
const Uint8* pixel_bytes(DcmDataset* ds, const std::string& path, std::size_t need) {
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
std::vector<std::int32_t> stored_values(DcmDataset* ds, const std::string& path) {
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

bool is_image_object(DcmFileFormat& ff) {
  const std::string sop = sop_class_of(ff);
  if (sop == UID_MediaStorageDirectoryStorage || sop == UID_SegmentationStorage) return false;
  long rows = 0;
  return get_long(ff.getDataset(), DCM_Rows, rows);
}

SliceHeader slice_header(DcmFileFormat& ff, const std::string& path) {
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

// ---- Writing helpers ------------------------------------------------------------------------------------

// A DS value in at most 16 characters.
std::string ds_str(double v) {
  if (std::abs(v) < 1e-12) return "0";
  char buf[40];
  for (int prec = 15; prec >= 1; --prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strlen(buf) <= 16) return buf;
  }
  LN_FAIL("cannot write ", v, " as a DICOM decimal string");
}

std::string ds_list(std::initializer_list<double> vs) {
  std::string s;
  for (double v : vs) {
    if (!s.empty()) s += '\\';
    s += ds_str(v);
  }
  return s;
}

std::string new_uid(const char* root) {
  char buf[100];
  dcmGenerateUniqueIdentifier(buf, root);
  return buf;
}

void put(DcmItem* item, const DcmTagKey& tag, const std::string& value) {
  const OFCondition c = item->putAndInsertString(DcmTag(tag), value.c_str());
  LN_CHECK(c.good(), "cannot set DICOM attribute ", DcmTag(tag).getTagName(), " to '", value, "' (", c.text(), ")");
}
void put16(DcmItem* item, const DcmTagKey& tag, unsigned v) {
  const OFCondition c = item->putAndInsertUint16(DcmTag(tag), static_cast<Uint16>(v));
  LN_CHECK(c.good(), "cannot set DICOM attribute ", DcmTag(tag).getTagName(), " (", c.text(), ")");
}
DcmItem* sub_item(DcmItem* item, const DcmTagKey& seq, long index = 0) {
  DcmItem* sub = nullptr;
  const OFCondition c = item->findOrCreateSequenceItem(DcmTag(seq), sub, index);
  LN_CHECK(c.good() && sub != nullptr, "cannot create DICOM sequence ", DcmTag(seq).getTagName(), " (", c.text(), ")");
  return sub;
}

std::string today() {
  OFString d;
  DcmDate::getCurrentDate(d);
  return d.c_str();
}

// Patient / study / equipment attributes shared by every file we write.
void put_common(DcmItem* ds, const DicomIdentity& who, const std::string& study_uid, const std::string& for_uid,
                const std::string& series_uid, const std::string& modality, const std::string& sop_class,
                int series_number) {
  put(ds, DCM_SpecificCharacterSet, "ISO_IR 192");
  put(ds, DCM_SOPClassUID, sop_class);
  put(ds, DCM_SOPInstanceUID, new_uid(SITE_INSTANCE_UID_ROOT));
  put(ds, DCM_StudyInstanceUID, study_uid);
  put(ds, DCM_SeriesInstanceUID, series_uid);
  put(ds, DCM_FrameOfReferenceUID, for_uid);
  put(ds, DCM_PositionReferenceIndicator, "");
  put(ds, DCM_Modality, modality);
  put(ds, DCM_PatientName, who.patient_name);
  put(ds, DCM_PatientID, who.patient_id);
  put(ds, DCM_PatientBirthDate, who.birth_date);
  put(ds, DCM_PatientSex, "");
  put(ds, DCM_AccessionNumber, who.accession_number);
  put(ds, DCM_InstitutionName, who.institution);
  put(ds, DCM_ReferringPhysicianName, "");
  put(ds, DCM_StudyID, "1");
  const std::string date = today();
  put(ds, DCM_StudyDate, date);
  put(ds, DCM_StudyTime, "120000");
  put(ds, DCM_SeriesDate, date);
  put(ds, DCM_ContentDate, date);
  put(ds, DCM_ContentTime, "120000");
  put(ds, DCM_Manufacturer, "livernet");
  put(ds, DCM_SeriesNumber, std::to_string(series_number));
}

void save(DcmFileFormat& ff, const std::string& path) {
  write_file_atomically(path, [&](const std::string& tmp) {
    const OFCondition c = ff.saveFile(tmp.c_str(), EXS_LittleEndianExplicit);
    LN_CHECK(c.good(), path, ": cannot write the DICOM file (", c.text(), ")");
  });
}

std::string file_for(const std::string& dir, const std::string& pattern, std::int64_t number) {
  const auto at = pattern.find("{}");
  LN_CHECK(at != std::string::npos, dir, ": file name pattern '", pattern, "' has no {}");
  std::string name = pattern;
  name.replace(at, 2, std::to_string(number));
  return (fs::path(dir) / name).string();
}

// File numbers per slice: 0..n-1, or a fixed scramble of them (never the identity for n >= 2).
std::vector<std::int64_t> file_numbers(std::int64_t n, bool shuffle) {
  std::vector<std::int64_t> num_of(static_cast<std::size_t>(n));
  std::iota(num_of.begin(), num_of.end(), 0);
  if (shuffle && n >= 2) {
    std::mt19937 rng(12345);
    std::shuffle(num_of.begin(), num_of.end(), rng);
    bool identity = true;
    for (std::int64_t k = 0; k < n; ++k) identity = identity && num_of[static_cast<std::size_t>(k)] == k;
    if (identity) std::reverse(num_of.begin(), num_of.end());
  }
  return num_of;
}

struct SeriesSpec {
  std::string sop_class, modality, image_type;
  int bits = 16;
  bool is_signed = true;
  bool rescale = true;
  double slope = 1, intercept = 0;
};

// Writes one file per slice of `g`; slice k's stored values come from stored(k, values).
std::string write_slices(const std::string& dir, const Grid& g, const DicomIdentity& who, const std::string& pattern,
                         bool shuffle, const SeriesSpec& spec, int series_number,
                         const std::function<void(std::int64_t, std::vector<std::int32_t>&)>& stored) {
  g.validate(dir);
  LN_CHECK(g.size[0] <= 65535 && g.size[1] <= 65535, dir, ": ", g.str(), " is too large for DICOM (65535 rows/columns)");
  std::error_code ec;
  fs::create_directories(dir, ec);
  LN_CHECK(fs::is_directory(dir), dir, ": cannot create the folder (", ec.message(), ")");
  const std::string study = who.study_uid.empty() ? new_uid(SITE_STUDY_UID_ROOT) : who.study_uid;
  const std::string for_uid = who.frame_of_reference_uid.empty() ? new_uid(SITE_UID_ROOT ".1.5") : who.frame_of_reference_uid;
  const std::string series = new_uid(SITE_SERIES_UID_ROOT);
  const auto numbers = file_numbers(g.size[2], shuffle);
  const std::size_t n = static_cast<std::size_t>(g.size[0] * g.size[1]);
  std::vector<std::int32_t> values(n);
  std::vector<Uint16> words;
  std::vector<Uint8> bytes;
  const long lo = spec.bits == 8 ? 0 : (spec.is_signed ? -32768 : 0);
  const long hi = spec.bits == 8 ? 255 : (spec.is_signed ? 32767 : 65535);
  for (std::int64_t k = 0; k < g.size[2]; ++k) {
    stored(k, values);
    DcmFileFormat ff;
    DcmDataset* ds = ff.getDataset();
    put_common(ds, who, study, for_uid, series, spec.modality, spec.sop_class, series_number);
    put(ds, DCM_ImageType, spec.image_type);
    put(ds, DCM_InstanceNumber, std::to_string(k + 1));
    put(ds, DCM_PatientPosition, "HFS");
    if (spec.sop_class == UID_SecondaryCaptureImageStorage) put(ds, DCM_ConversionType, "WSD");
    const Vec3 ipp = g.to_lps(0, 0, static_cast<double>(k));
    put(ds, DCM_ImagePositionPatient, ds_list({ipp[0], ipp[1], ipp[2]}));
    put(ds, DCM_ImageOrientationPatient, ds_list({g.axes[0][0], g.axes[0][1], g.axes[0][2], g.axes[1][0],
                                                  g.axes[1][1], g.axes[1][2]}));
    put(ds, DCM_PixelSpacing, ds_list({g.spacing[1], g.spacing[0]}));
    put(ds, DCM_SliceThickness, ds_str(g.spacing[2]));
    put(ds, DCM_SliceLocation, ds_str(dot(ipp, cross(g.axes[0], g.axes[1]))));
    put16(ds, DCM_SamplesPerPixel, 1);
    put(ds, DCM_PhotometricInterpretation, "MONOCHROME2");
    put16(ds, DCM_Rows, static_cast<unsigned>(g.size[1]));
    put16(ds, DCM_Columns, static_cast<unsigned>(g.size[0]));
    put16(ds, DCM_BitsAllocated, static_cast<unsigned>(spec.bits));
    put16(ds, DCM_BitsStored, static_cast<unsigned>(spec.bits));
    put16(ds, DCM_HighBit, static_cast<unsigned>(spec.bits - 1));
    put16(ds, DCM_PixelRepresentation, spec.is_signed ? 1 : 0);
    if (spec.rescale) {
      put(ds, DCM_RescaleIntercept, ds_str(spec.intercept));
      put(ds, DCM_RescaleSlope, ds_str(spec.slope));
      put(ds, DCM_RescaleType, spec.modality == "CT" && spec.is_signed ? "HU" : "US");
    }
    if (spec.bits == 16) put(ds, DCM_KVP, "");
    OFCondition c;
    if (spec.bits == 8) {
      bytes.resize(n + (n & 1), 0);
      for (std::size_t p = 0; p < n; ++p) bytes[p] = static_cast<Uint8>(std::clamp<long>(values[p], lo, hi));
      c = ds->putAndInsertUint8Array(DCM_PixelData, bytes.data(), static_cast<unsigned long>(bytes.size()));
    } else {
      words.resize(n);
      for (std::size_t p = 0; p < n; ++p)
        words[p] = static_cast<Uint16>(static_cast<std::int32_t>(std::clamp<long>(values[p], lo, hi)) & 0xffff);
      c = ds->putAndInsertUint16Array(DCM_PixelData, words.data(), static_cast<unsigned long>(n));
    }
    LN_CHECK(c.good(), dir, ": cannot set the pixel data (", c.text(), ")");
    save(ff, file_for(dir, pattern, numbers[static_cast<std::size_t>(k)]));
  }
  return series;
}

}  // namespace

// ---- Readers ---------------------------------------------------------------------------------------------

Volume read_dicom_series(const std::string& dir, DicomSeriesInfo* info, const std::string& series_uid) {
  quiet_dcmtk();
  // Pass 1: headers of every image file, grouped by series.
  std::map<std::string, std::vector<SliceHeader>> by_series;
  for (const std::string& path : dicom_files_in(dir)) {
    DcmFileFormat ff;
    load(ff, path, true);
    if (!is_image_object(ff)) continue;
    const std::string uid = get_str(ff.getDataset(), DCM_SeriesInstanceUID);
    if (!series_uid.empty() && uid != series_uid) continue;
    by_series[uid].push_back(slice_header(ff, path));
  }
  if (!series_uid.empty())
    LN_CHECK(!by_series.empty(), dir, ": no DICOM image files of series ", series_uid);
  LN_CHECK(!by_series.empty(), dir, ": no DICOM image files");
  if (by_series.size() > 1) {
    std::string list;
    for (const auto& [uid, hs] : by_series)
      list += str_cat(list.empty() ? "" : ", ", uid.empty() ? "(no SeriesInstanceUID)" : printable(uid), " (", hs.size(), " files)");
    LN_FAIL(dir, ": ", by_series.size(), " DICOM series in one folder: ", list, "; name the one to read");
  }
  std::vector<SliceHeader> hs = std::move(by_series.begin()->second);
  LN_CHECK(hs.size() >= 2, dir, ": only one slice (", file_name(hs[0].path),
           "); a volume needs at least 2 to know its slice spacing");

  // One in-plane geometry for all.
  const SliceHeader& h0 = hs[0];
  for (const SliceHeader& h : hs) {
    LN_CHECK(h.format.rows == h0.format.rows && h.format.cols == h0.format.cols, dir, ": ", file_name(h.path),
             " has ", h.format.cols, "x", h.format.rows, " pixels, ", file_name(h0.path), " ", h0.format.cols, "x",
             h0.format.rows);
    LN_CHECK(close_vec(h.plane.row_dir, h0.plane.row_dir, 1e-3) && close_vec(h.plane.col_dir, h0.plane.col_dir, 1e-3),
             dir, ": ", file_name(h.path), " and ", file_name(h0.path), " have different ImageOrientationPatient");
    LN_CHECK(close_spacing(h.plane.ps_row, h0.plane.ps_row) && close_spacing(h.plane.ps_col, h0.plane.ps_col), dir,
             ": ", file_name(h.path), " and ", file_name(h0.path), " have different PixelSpacing");
  }

  // Sort along the normal; run against it when the instance numbers do.
  const Vec3 normal = unit(cross(h0.plane.row_dir, h0.plane.col_dir));
  std::vector<double> d(hs.size());
  std::stable_sort(hs.begin(), hs.end(),
                   [&](const SliceHeader& a, const SliceHeader& b) { return dot(normal, a.plane.ipp) < dot(normal, b.plane.ipp); });
  const bool all_numbered = std::all_of(hs.begin(), hs.end(), [](const SliceHeader& h) { return h.has_instance; });
  if (all_numbered && hs.front().instance > hs.back().instance) std::reverse(hs.begin(), hs.end());
  for (std::size_t s = 0; s < hs.size(); ++s) d[s] = dot(normal, hs[s].plane.ipp);
  const double dir_sign = d.back() >= d.front() ? 1.0 : -1.0;

  std::vector<double> gaps(hs.size() - 1);
  for (std::size_t s = 0; s + 1 < hs.size(); ++s) {
    gaps[s] = std::abs(d[s + 1] - d[s]);
    LN_CHECK(gaps[s] > 1e-3, dir, ": ", file_name(hs[s].path), " and ", file_name(hs[s + 1].path),
             " are at the same position ", position_label(normal, hs[s].plane.ipp), " mm (duplicate slices)");
  }
  std::vector<double> sorted_gaps = gaps;
  std::nth_element(sorted_gaps.begin(), sorted_gaps.begin() + static_cast<long>(sorted_gaps.size() / 2), sorted_gaps.end());
  const double median = sorted_gaps[sorted_gaps.size() / 2];
  for (std::size_t s = 0; s + 1 < hs.size(); ++s)
    LN_CHECK(gaps[s] <= 1.5 * median, dir, ": missing slice(s) between ", position_label(normal, hs[s].plane.ipp),
             " and ", position_label(normal, hs[s + 1].plane.ipp), " mm (", file_name(hs[s].path), ", ",
             file_name(hs[s + 1].path), "; ", num(gaps[s]), " mm apart, the series is spaced ", num(median), " mm)");
  const double spacing = std::abs(d.back() - d.front()) / static_cast<double>(hs.size() - 1);
  const double drift_tol = std::max(0.05, 0.1 * std::min(h0.plane.ps_row, h0.plane.ps_col));
  for (std::size_t s = 0; s < hs.size(); ++s) {
    const double expect = d.front() + dir_sign * spacing * static_cast<double>(s);
    LN_CHECK(std::abs(d[s] - expect) <= 0.05 * spacing, dir, ": non-uniform slice spacing: ", file_name(hs[s].path),
             " at ", position_label(normal, hs[s].plane.ipp), " mm is ", num(std::abs(d[s] - expect)),
             " mm off the even spacing of ", num(spacing), " mm");
    const Vec3 off = sub(hs[s].plane.ipp, hs[0].plane.ipp);
    const Vec3 sideways = sub(off, scaled(normal, dot(off, normal)));
    LN_CHECK(norm(sideways) <= drift_tol, dir, ": ", file_name(hs[s].path), " is shifted ", num(norm(sideways)),
             " mm sideways from the stack (gantry tilt?); tilted series are not supported");
  }

  Grid g;
  g.size = {h0.format.cols, h0.format.rows, static_cast<std::int64_t>(hs.size())};
  g.spacing = {h0.plane.ps_col, h0.plane.ps_row, spacing};
  g.axes = {h0.plane.row_dir, h0.plane.col_dir, scaled(normal, dir_sign)};
  g.origin = hs[0].plane.ipp;
  g.validate(dir);

  // Pass 2: pixels, rescaled per slice.
  Volume vol(g);
  const std::size_t plane = static_cast<std::size_t>(g.size[0] * g.size[1]);
  for (std::size_t s = 0; s < hs.size(); ++s) {
    DcmFileFormat ff;
    load(ff, hs[s].path, false);
    DcmDataset* ds = ff.getDataset();
    double slope = 1, intercept = 0;
    Float64 v = 0;
    if (ds->findAndGetFloat64(DCM_RescaleSlope, v).good()) slope = v;
    if (ds->findAndGetFloat64(DCM_RescaleIntercept, v).good()) intercept = v;
    LN_CHECK(std::isfinite(slope) && std::isfinite(intercept) && slope != 0, hs[s].path,
             ": invalid RescaleSlope/RescaleIntercept");
    const std::vector<std::int32_t> raw = stored_values(ds, hs[s].path);
    LN_CHECK(raw.size() == plane, hs[s].path, ": its pixel size changed while decoding");
    float* out = vol.v.data() + s * plane;
    for (std::size_t p = 0; p < plane; ++p) out[p] = static_cast<float>(slope * raw[p] + intercept);
  }

  if (info != nullptr) {
    info->series_uid = h0.series_uid;
    info->study_uid = h0.study_uid;
    info->frame_of_reference_uid = h0.for_uid;
    info->modality = h0.modality;
    info->files.clear();
    for (const SliceHeader& h : hs) info->files.push_back(h.path);
  }
  return vol;
}

Mask read_dicom_mask_series(const std::string& dir, const Grid& ct) {
  quiet_dcmtk();
  ct.validate(dir + ": the volume grid");
  Mask m(ct);
  const std::size_t plane = static_cast<std::size_t>(ct.size[0] * ct.size[1]);
  std::vector<std::string> owner(static_cast<std::size_t>(ct.size[2]));
  int used = 0;
  for (const std::string& path : dicom_files_in(dir)) {
    DcmFileFormat ff;
    load(ff, path, false);
    if (!is_image_object(ff)) continue;
    DcmDataset* ds = ff.getDataset();
    const PixelFormat f = pixel_format(ds);
    check_slice_format(f, path);
    const Plane p = plane_of(ds, ds, ds, f.rows, f.cols, path);
    const std::int64_t k = place_on_grid(ct, p, str_cat(dir, ": ", file_name(path)));
    std::string& prev = owner[static_cast<std::size_t>(k)];
    LN_CHECK(prev.empty(), dir, ": ", file_name(prev), " and ", file_name(path), " are both on slice ", k,
             " (", position_label(ct.axes[2], p.ipp), " mm)");
    prev = path;
    const std::vector<std::int32_t> raw = stored_values(ds, path);
    std::uint8_t* out = m.v.data() + static_cast<std::size_t>(k) * plane;
    for (std::size_t q = 0; q < plane; ++q) out[q] = raw[q] != 0 ? 1 : 0;
    ++used;
  }
  LN_CHECK(used > 0, dir, ": no DICOM mask slices");
  return m;
}

std::vector<DicomSegment> read_dicom_seg(const std::string& file, const Grid& ct) {
  quiet_dcmtk();
  ct.validate(file + ": the volume grid");
  std::error_code ec;
  LN_CHECK(fs::is_regular_file(file, ec), file, ": no such file");
  DcmFileFormat ff;
  load(ff, file, false);
  DcmDataset* ds = ff.getDataset();
  const std::string sop = sop_class_of(ff);
  LN_CHECK(sop == UID_SegmentationStorage, file, ": not a DICOM-SEG (SOP class ", sop.empty() ? "missing" : printable(sop), ")");
  const std::string type = get_str(ds, DCM_SegmentationType);
  LN_CHECK(type == "BINARY" || type == "FRACTIONAL", file, ": SegmentationType '", printable(type),
           "' is not supported (BINARY or FRACTIONAL)");
  const bool binary = type == "BINARY";
  long rows = 0, cols = 0, frames = 0, bits = 0, max_frac = 0;
  LN_CHECK(get_long(ds, DCM_Rows, rows) && get_long(ds, DCM_Columns, cols) && rows > 0 && cols > 0, file,
           ": no valid Rows/Columns");
  LN_CHECK(get_long(ds, DCM_NumberOfFrames, frames) && frames >= 1, file, ": no valid NumberOfFrames");
  LN_CHECK(get_long(ds, DCM_BitsAllocated, bits) && bits == (binary ? 1 : 8), file, ": BitsAllocated ", bits,
           " for a ", type, " segmentation (", binary ? 1 : 8, " expected)");
  if (!binary)
    LN_CHECK(get_long(ds, DCM_MaximumFractionalValue, max_frac) && max_frac >= 1 && max_frac <= 255, file,
             ": no valid MaximumFractionalValue");

  // Segments.
  std::vector<DicomSegment> segs;
  std::map<long, std::size_t> seg_index;
  DcmSequenceOfItems* seq = nullptr;
  LN_CHECK(ds->findAndGetSequence(DCM_SegmentSequence, seq).good() && seq != nullptr && seq->card() > 0, file,
           ": no SegmentSequence");
  for (DcmObject* o = seq->nextInContainer(nullptr); o != nullptr; o = seq->nextInContainer(o)) {
    auto* item = static_cast<DcmItem*>(o);
    long number = 0;
    LN_CHECK(get_long(item, DCM_SegmentNumber, number) && number >= 1, file, ": a segment without a valid SegmentNumber");
    LN_CHECK(seg_index.count(number) == 0, file, ": segment number ", number, " appears twice");
    seg_index[number] = segs.size();
    DicomSegment s;
    s.number = static_cast<int>(number);
    s.label = get_str(item, DCM_SegmentLabel);
    s.mask.grid = ct;  // voxels allocated below, for segments that have frames
    segs.push_back(std::move(s));
  }

  // Frames.
  DcmItem* shared = seq_item(ds, DCM_SharedFunctionalGroupsSequence);
  DcmSequenceOfItems* per_frame = nullptr;
  LN_CHECK(ds->findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, per_frame).good() && per_frame != nullptr, file,
           ": no PerFrameFunctionalGroupsSequence");
  LN_CHECK(static_cast<long>(per_frame->card()) == frames, file, ": NumberOfFrames is ", frames, " but ",
           per_frame->card(), " per-frame functional groups are present");
  const std::size_t plane = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
  const std::size_t total = plane * static_cast<std::size_t>(frames);
  const std::size_t need = binary ? (total + 7) / 8 : total;
  const Uint8* px = pixel_bytes(ds, file, need);
  auto group_of = [&](DcmItem* item, const DcmTagKey& tag) { return seq_item(seq_item(item, tag) != nullptr ? item : shared, tag); };
  // Which segments have frames, before any mask is allocated: a segment without frames keeps an empty mask,
  // and the masks of those with frames must fit the budget (a small file can list thousands of segments).
  std::vector<std::size_t> frame_segment;  // index into segs, per frame
  {
    std::set<std::size_t> with_frames;
    std::size_t f = 0;
    for (DcmObject* o = per_frame->nextInContainer(nullptr); o != nullptr; o = per_frame->nextInContainer(o), ++f) {
      const std::string what = str_cat(file, ": frame ", f + 1);
      long number = 0;
      LN_CHECK(get_long(group_of(static_cast<DcmItem*>(o), DCM_SegmentIdentificationSequence), DCM_ReferencedSegmentNumber, number),
               what, ": no ReferencedSegmentNumber");
      const auto it = seg_index.find(number);
      LN_CHECK(it != seg_index.end(), what, ": refers to segment ", number, ", which the SegmentSequence lacks");
      frame_segment.push_back(it->second);
      with_frames.insert(it->second);
    }
    const double bytes = static_cast<double>(with_frames.size()) * static_cast<double>(ct.voxels());
    LN_CHECK(bytes <= static_cast<double>(kMaxSegMaskBytes), file, ": ", with_frames.size(),
             " segments have frames; their masks on the ", ct.str(), " CT would need ",
             static_cast<long long>(bytes / (1 << 20)), " MiB (more than the ", kMaxSegMaskBytes >> 20, " MiB allowed)");
    for (std::size_t i : with_frames) segs[i].mask = Mask(ct);
  }
  std::size_t f = 0;
  for (DcmObject* o = per_frame->nextInContainer(nullptr); o != nullptr; o = per_frame->nextInContainer(o), ++f) {
    auto* item = static_cast<DcmItem*>(o);
    const std::string what = str_cat(file, ": frame ", f + 1);
    auto group = [&](const DcmTagKey& tag) { return group_of(item, tag); };
    DicomSegment& seg = segs[frame_segment[f]];
    DcmItem* pos = group(DCM_PlanePositionSequence);
    LN_CHECK(pos != nullptr, what, ": no PlanePositionSequence");
    const Plane p = plane_of(group(DCM_PlaneOrientationSequence), group(DCM_PixelMeasuresSequence), pos, rows, cols, what);
    const std::int64_t k = place_on_grid(ct, p, str_cat(what, " (segment ", seg.number, ")"));
    std::uint8_t* out = seg.mask.v.data() + static_cast<std::size_t>(k) * plane;
    const std::size_t base = f * plane;
    if (binary) {
      for (std::size_t q = 0; q < plane; ++q) {
        const std::size_t b = base + q;
        if ((px[b >> 3] >> (b & 7)) & 1) out[q] = 1;
      }
    } else {
      for (std::size_t q = 0; q < plane; ++q)
        if (2 * static_cast<long>(px[base + q]) >= max_frac) out[q] = 1;
    }
  }
  return segs;
}

std::vector<DicomFileFacts> scan_dicom_tree(const std::string& dir) {
  quiet_dcmtk();
  std::error_code ec;
  LN_CHECK(fs::is_directory(dir, ec), dir, ": no such folder");
  std::vector<std::string> paths;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code type_ec;
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory(type_ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(type_ec) && !ignored_name(name) && looks_like_dicom(it->path())) paths.push_back(it->path().string());
  }
  LN_CHECK(!ec, dir, ": cannot walk the folder tree (", ec.message(), ")");
  std::sort(paths.begin(), paths.end());
  std::vector<DicomFileFacts> out;
  for (const std::string& path : paths) {
    DcmFileFormat ff;
    load(ff, path, true);
    DcmDataset* ds = ff.getDataset();
    DicomFileFacts f;
    f.path = path;
    f.sop_class_uid = sop_class_of(ff);
    if (f.sop_class_uid == UID_MediaStorageDirectoryStorage) continue;
    f.modality = get_str(ds, DCM_Modality);
    f.series_uid = get_str(ds, DCM_SeriesInstanceUID);
    f.study_uid = get_str(ds, DCM_StudyInstanceUID);
    DcmSequenceOfItems* refs = nullptr;
    if (ds->findAndGetSequence(DCM_ReferencedSeriesSequence, refs).good() && refs != nullptr)
      for (DcmObject* o = refs->nextInContainer(nullptr); o != nullptr; o = refs->nextInContainer(o)) {
        const std::string uid = get_str(static_cast<DcmItem*>(o), DCM_SeriesInstanceUID);
        if (!uid.empty()) f.referenced_series.push_back(uid);
      }
    out.push_back(std::move(f));
  }
  return out;
}

// ---- Writers ---------------------------------------------------------------------------------------------

std::string write_dicom_series(const std::string& dir, const Volume& ct, const DicomIdentity& who,
                               const std::string& name_pattern, bool shuffle_names) {
  LN_CHECK(ct.v.size() == static_cast<std::size_t>(ct.grid.voxels()), dir, ": the volume holds ", ct.v.size(),
           " values for ", ct.grid.str());
  double lo = 0, hi = 0;
  for (std::size_t p = 0; p < ct.v.size(); ++p) {
    const double v = std::round(static_cast<double>(ct.v[p]));
    LN_CHECK(std::isfinite(v), dir, ": the volume holds a non-finite value");
    if (p == 0 || v < lo) lo = v;
    if (p == 0 || v > hi) hi = v;
  }
  SeriesSpec spec;
  spec.sop_class = UID_CTImageStorage;
  spec.modality = "CT";
  spec.image_type = "ORIGINAL\\PRIMARY\\AXIAL";
  if (lo - -1024 >= -32768 && hi - -1024 <= 32767) {
    spec.slope = 1, spec.intercept = -1024;
  } else if (hi - lo <= 65535) {
    spec.slope = 1, spec.intercept = std::floor((lo + hi) / 2);
  } else {
    spec.slope = (hi - lo) / 65534.0, spec.intercept = (lo + hi) / 2;
  }
  return write_slices(dir, ct.grid, who, name_pattern, shuffle_names, spec, 1,
                      [&](std::int64_t k, std::vector<std::int32_t>& out) {
                        const float* src = ct.v.data() + static_cast<std::size_t>(k) * out.size();
                        for (std::size_t p = 0; p < out.size(); ++p)
                          out[p] = static_cast<std::int32_t>(std::lround((src[p] - spec.intercept) / spec.slope));
                      });
}

void write_dicom_mask_series(const std::string& dir, const Mask& mask, const DicomIdentity& who,
                             const std::string& name_pattern, const std::string& modality) {
  LN_CHECK(mask.v.size() == static_cast<std::size_t>(mask.grid.voxels()), dir, ": the mask holds ", mask.v.size(),
           " values for ", mask.grid.str());
  SeriesSpec spec;
  spec.modality = modality;
  spec.is_signed = false;
  if (modality == "OT") {
    spec.sop_class = UID_SecondaryCaptureImageStorage;
    spec.image_type = "DERIVED\\SECONDARY";
    spec.bits = 8;
    spec.rescale = false;
  } else if (modality == "CT") {
    spec.sop_class = UID_CTImageStorage;
    spec.image_type = "DERIVED\\SECONDARY\\AXIAL";
    spec.bits = 16;
  } else {
    LN_FAIL(dir, ": mask series modality '", modality, "' is not supported (OT or CT)");
  }
  write_slices(dir, mask.grid, who, name_pattern, false, spec, 2, [&](std::int64_t k, std::vector<std::int32_t>& out) {
    const std::uint8_t* src = mask.v.data() + static_cast<std::size_t>(k) * out.size();
    for (std::size_t p = 0; p < out.size(); ++p) out[p] = src[p] != 0 ? 255 : 0;
  });
}

void write_dicom_seg(const std::string& path, const std::vector<DicomSegment>& segments,
                     const std::string& ct_series_uid, const DicomIdentity& who) {
  LN_CHECK(!segments.empty(), path, ": no segments to write");
  const Grid& g = segments[0].mask.grid;
  g.validate(path);
  LN_CHECK(g.size[0] <= 65535 && g.size[1] <= 65535, path, ": ", g.str(), " is too large for DICOM");
  std::vector<int> numbers;
  std::set<int> seen;
  for (std::size_t s = 0; s < segments.size(); ++s) {
    const DicomSegment& seg = segments[s];
    const std::string diff = grid_difference(g, seg.mask.grid, 1e-4);
    LN_CHECK(diff.empty(), path, ": segment '", seg.label, "' is on another grid than the first (", diff, ")");
    LN_CHECK(seg.mask.v.size() == static_cast<std::size_t>(g.voxels()), path, ": segment '", seg.label,
             "' holds ", seg.mask.v.size(), " values for ", g.str());
    const int number = seg.number > 0 ? seg.number : static_cast<int>(s + 1);
    LN_CHECK(number <= 65535 && seen.insert(number).second, path, ": segment number ", number, " is used twice");
    numbers.push_back(number);
  }

  // Frames: (segment, slice) pairs where the segment has voxels.
  const std::size_t plane = static_cast<std::size_t>(g.size[0] * g.size[1]);
  std::vector<std::pair<std::size_t, std::int64_t>> frames;
  for (std::size_t s = 0; s < segments.size(); ++s)
    for (std::int64_t k = 0; k < g.size[2]; ++k) {
      const auto* m = segments[s].mask.v.data() + static_cast<std::size_t>(k) * plane;
      if (std::any_of(m, m + plane, [](std::uint8_t v) { return v != 0; })) frames.emplace_back(s, k);
    }
  if (frames.empty()) frames.emplace_back(0, 0);  // NumberOfFrames must be >= 1: one empty frame

  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    LN_CHECK(fs::is_directory(parent), path, ": cannot create the folder ", parent.string(), " (", ec.message(), ")");
  }
  DcmFileFormat ff;
  DcmDataset* ds = ff.getDataset();
  const std::string study = who.study_uid.empty() ? new_uid(SITE_STUDY_UID_ROOT) : who.study_uid;
  const std::string for_uid =
      who.frame_of_reference_uid.empty() ? new_uid(SITE_UID_ROOT ".1.5") : who.frame_of_reference_uid;
  put_common(ds, who, study, for_uid, new_uid(SITE_SERIES_UID_ROOT), "SEG", UID_SegmentationStorage, 100);
  put(ds, DCM_InstanceNumber, "1");
  put(ds, DCM_ImageType, "DERIVED\\PRIMARY");
  put(ds, DCM_ContentLabel, "SEGMENTATION");
  put(ds, DCM_ContentDescription, "");
  put(ds, DCM_ContentCreatorName, "");
  put(ds, DCM_DeviceSerialNumber, "1");
  put(ds, DCM_ManufacturerModelName, "livernet");
  put(ds, DCM_SoftwareVersions, "1");
  put16(ds, DCM_SamplesPerPixel, 1);
  put(ds, DCM_PhotometricInterpretation, "MONOCHROME2");
  put16(ds, DCM_Rows, static_cast<unsigned>(g.size[1]));
  put16(ds, DCM_Columns, static_cast<unsigned>(g.size[0]));
  put16(ds, DCM_BitsAllocated, 1);
  put16(ds, DCM_BitsStored, 1);
  put16(ds, DCM_HighBit, 0);
  put16(ds, DCM_PixelRepresentation, 0);
  put(ds, DCM_LossyImageCompression, "00");
  put(ds, DCM_SegmentationType, "BINARY");
  put(ds, DCM_NumberOfFrames, std::to_string(frames.size()));
  put(ds, DCM_ContentTime, "120000");

  // Referenced CT series.
  put(sub_item(ds, DCM_ReferencedSeriesSequence), DCM_SeriesInstanceUID, ct_series_uid);

  // Dimensions: segment number, then position.
  const std::string dim_uid = new_uid(SITE_UID_ROOT ".1.6");
  put(sub_item(ds, DCM_DimensionOrganizationSequence), DCM_DimensionOrganizationUID, dim_uid);
  const std::pair<DcmTagKey, DcmTagKey> dims[2] = {{DCM_ReferencedSegmentNumber, DCM_SegmentIdentificationSequence},
                                                   {DCM_ImagePositionPatient, DCM_PlanePositionSequence}};
  for (long d = 0; d < 2; ++d) {
    DcmItem* di = sub_item(ds, DCM_DimensionIndexSequence, d);
    put(di, DCM_DimensionOrganizationUID, dim_uid);
    for (const auto& [tag, key] : {std::pair{DCM_DimensionIndexPointer, dims[d].first},
                                   std::pair{DCM_FunctionalGroupPointer, dims[d].second}}) {
      const OFCondition c = di->putAndInsertTagKey(tag, key);
      LN_CHECK(c.good(), path, ": cannot write the dimension index (", c.text(), ")");
    }
  }

  // Segments.
  for (std::size_t s = 0; s < segments.size(); ++s) {
    DcmItem* it = sub_item(ds, DCM_SegmentSequence, static_cast<long>(s));
    put16(it, DCM_SegmentNumber, static_cast<unsigned>(numbers[s]));
    put(it, DCM_SegmentLabel, segments[s].label);
    put(it, DCM_SegmentAlgorithmType, "MANUAL");
    std::string lower = segments[s].label;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool liver = lower.find("liver") != std::string::npos;
    DcmItem* cat = sub_item(it, DCM_SegmentedPropertyCategoryCodeSequence);
    put(cat, DCM_CodeValue, liver ? "123037004" : "49755003");
    put(cat, DCM_CodingSchemeDesignator, "SCT");
    put(cat, DCM_CodeMeaning, liver ? "Anatomical Structure" : "Morphologically Altered Structure");
    DcmItem* typ = sub_item(it, DCM_SegmentedPropertyTypeCodeSequence);
    put(typ, DCM_CodeValue, liver ? "10200004" : "108369006");
    put(typ, DCM_CodingSchemeDesignator, "SCT");
    put(typ, DCM_CodeMeaning, liver ? "Liver" : "Neoplasm");
  }

  // Shared functional groups: orientation and pixel measures.
  DcmItem* shared = sub_item(ds, DCM_SharedFunctionalGroupsSequence);
  put(sub_item(shared, DCM_PlaneOrientationSequence), DCM_ImageOrientationPatient,
      ds_list({g.axes[0][0], g.axes[0][1], g.axes[0][2], g.axes[1][0], g.axes[1][1], g.axes[1][2]}));
  DcmItem* pm = sub_item(shared, DCM_PixelMeasuresSequence);
  put(pm, DCM_PixelSpacing, ds_list({g.spacing[1], g.spacing[0]}));
  put(pm, DCM_SliceThickness, ds_str(g.spacing[2]));
  put(pm, DCM_SpacingBetweenSlices, ds_str(g.spacing[2]));

  // Per-frame functional groups and the packed bits (frame after frame, no padding between frames).
  auto* per_frame = new DcmSequenceOfItems(DCM_PerFrameFunctionalGroupsSequence);
  LN_CHECK(ds->insert(per_frame, true).good(), path, ": cannot create the per-frame functional groups");
  std::vector<Uint8> bits((frames.size() * plane + 7) / 8, 0);
  for (std::size_t f = 0; f < frames.size(); ++f) {
    const auto [s, k] = frames[f];
    auto* item = new DcmItem();
    LN_CHECK(per_frame->append(item).good(), path, ": cannot append a per-frame item");
    const Vec3 ipp = g.to_lps(0, 0, static_cast<double>(k));
    DcmItem* fc = sub_item(item, DCM_FrameContentSequence);
    const std::string dim_values = str_cat(numbers[s], "\\", k + 1);
    const OFCondition c = fc->putAndInsertString(DcmTag(DCM_DimensionIndexValues), dim_values.c_str());
    LN_CHECK(c.good(), path, ": cannot write DimensionIndexValues (", c.text(), ")");
    put(sub_item(item, DCM_PlanePositionSequence), DCM_ImagePositionPatient, ds_list({ipp[0], ipp[1], ipp[2]}));
    put16(sub_item(item, DCM_SegmentIdentificationSequence), DCM_ReferencedSegmentNumber,
          static_cast<unsigned>(numbers[s]));
    const auto* m = segments[s].mask.v.data() + static_cast<std::size_t>(k) * plane;
    for (std::size_t q = 0; q < plane; ++q)
      if (m[q] != 0) {
        const std::size_t b = f * plane + q;
        bits[b >> 3] = static_cast<Uint8>(bits[b >> 3] | (1u << (b & 7)));
      }
  }
  if (bits.size() & 1) bits.push_back(0);
  const OFCondition c = ds->putAndInsertUint8Array(DCM_PixelData, bits.data(), static_cast<unsigned long>(bits.size()));
  LN_CHECK(c.good(), path, ": cannot set the pixel data (", c.text(), ")");
  save(ff, path);
}

}  // namespace livernet::io
