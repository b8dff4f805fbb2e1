#include "ct/nifti.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "io/hdf5.h"

namespace livernet::io {

namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kMaxVoxels = std::int64_t{1} << 31;
constexpr std::size_t kChunkBytes = std::size_t{1} << 20;  // streaming unit (a multiple of every voxel size)

// ---- datatypes -----------------------------------------------------------------------------------

enum class Kind { kUnsigned, kSigned, kFloat };

struct DType {
  int code;
  const char* name;
  int bytes;
  Kind kind;
  double lo, hi;  // the representable range (for writing)
};

constexpr DType kTypes[] = {
    {2, "uint8", 1, Kind::kUnsigned, 0, 255},
    {256, "int8", 1, Kind::kSigned, -128, 127},
    {4, "int16", 2, Kind::kSigned, -32768, 32767},
    {512, "uint16", 2, Kind::kUnsigned, 0, 65535},
    {8, "int32", 4, Kind::kSigned, -2147483648.0, 2147483647.0},
    {768, "uint32", 4, Kind::kUnsigned, 0, 4294967295.0},
    // The largest doubles below 2^63 and 2^64, so that the cast after the range check is defined.
    {1024, "int64", 8, Kind::kSigned, -9223372036854775808.0, 9223372036854774784.0},
    {1280, "uint64", 8, Kind::kUnsigned, 0, 18446744073709549568.0},
    {16, "float32", 4, Kind::kFloat, -static_cast<double>(std::numeric_limits<float>::max()),
     static_cast<double>(std::numeric_limits<float>::max())},
    {64, "float64", 8, Kind::kFloat, -std::numeric_limits<double>::max(), std::numeric_limits<double>::max()},
};

const DType* dtype_by_code(int code) {
  for (const DType& t : kTypes)
    if (t.code == code) return &t;
  return nullptr;
}

const char* unsupported_name(int code) {
  switch (code) {
    case 0: return "unknown (0)";
    case 1: return "binary (1 bit)";
    case 32: return "complex64";
    case 128: return "RGB24";
    case 1536: return "float128";
    case 1792: return "complex128";
    case 2048: return "complex256";
    case 2304: return "RGBA32";
    default: return nullptr;
  }
}

std::string supported_list() {
  std::string s;
  for (const DType& t : kTypes) s += std::string(s.empty() ? "" : ", ") + t.name;
  return s;
}

// ---- small helpers -------------------------------------------------------------------------------

// The shortest text that reads back as the same double (or float: header fields of NIfTI-1 are floats);
// whole numbers without an exponent.
std::string num(double v, bool as_float = false) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+inf" : "-inf";
  char buf[64];
  if (v == std::floor(v) && std::abs(v) < 1e18) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  const auto r = as_float ? std::to_chars(buf, buf + sizeof buf, static_cast<float>(v)) : std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string voxel_str(const Grid& g, std::int64_t n) {
  const std::int64_t i = n % g.size[0], j = (n / g.size[0]) % g.size[1], k = n / (g.size[0] * g.size[1]);
  return str_cat("voxel (", i, ", ", j, ", ", k, ")");
}

std::string dims_str(const std::int64_t* d, int n) {
  std::string s;
  for (int a = 0; a < n; ++a) {
    if (a) s += 'x';
    s += std::to_string(d[a]);
  }
  return s;
}

std::string printable(const unsigned char* p, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isprint(p[i])) {
      s += static_cast<char>(p[i]);
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", p[i]);
      s += b;
    }
  }
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  for (std::size_t i = 0; i < suffix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[s.size() - suffix.size() + i])) != suffix[i]) return false;
  return true;
}

template <typename T>
T load(const unsigned char* p, bool swap) {
  unsigned char b[sizeof(T)];
  std::memcpy(b, p, sizeof(T));
  if (swap) std::reverse(b, b + sizeof(T));
  T v;
  std::memcpy(&v, b, sizeof(T));
  return v;
}

template <typename T>
void store(unsigned char* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

// ---- input ---------------------------------------------------------------------------------------

// A .nii file read through zlib, which passes plain files through unchanged; gzip is recognised by the
// magic bytes, whatever the name says.
class Input {
 public:
  explicit Input(const std::string& path) : path_(path) {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    LN_CHECK(f, path, ": cannot open (", std::strerror(errno), ")");
    std::error_code ec;
    LN_CHECK(!fs::is_directory(path, ec), path, ": is a directory, not a NIfTI file");
    unsigned char m[2] = {0, 0};
    gzip_ = std::fread(m, 1, 2, f.get()) == 2 && m[0] == 0x1f && m[1] == 0x8b;
    LN_CHECK(std::fseek(f.get(), 0, SEEK_END) == 0, path, ": cannot seek");
    const long size = std::ftell(f.get());
    LN_CHECK(size >= 0, path, ": cannot determine the file size");
    file_size_ = static_cast<std::uint64_t>(size);
    if (gzip_ && file_size_ >= 18) {  // ISIZE: the uncompressed size mod 2^32, a hint for reserving memory
      unsigned char t[4];
      if (std::fseek(f.get(), -4, SEEK_END) == 0 && std::fread(t, 1, 4, f.get()) == 4)
        isize_ = t[0] | (t[1] << 8) | (t[2] << 16) | (static_cast<std::uint32_t>(t[3]) << 24);
    }
    gz_ = gzopen(path.c_str(), "rb");
    LN_CHECK(gz_, path, ": cannot open (", std::strerror(errno), ")");
    gzbuffer(gz_, 1 << 18);
  }
  ~Input() { gzclose(gz_); }
  Input(const Input&) = delete;
  Input& operator=(const Input&) = delete;

  bool gzip() const { return gzip_; }
  std::uint64_t file_size() const { return file_size_; }
  // Whether the gzip trailer agrees that the stream decompresses to `total` bytes.
  bool isize_matches(std::uint64_t total) const { return gzip_ && isize_ == static_cast<std::uint32_t>(total); }

  // Up to n bytes; fewer only at the end of the data.
  std::size_t read(void* dst, std::size_t n) {
    std::size_t got = 0;
    while (got < n) {
      const unsigned want = static_cast<unsigned>(std::min<std::size_t>(n - got, std::size_t{1} << 30));
      const int r = gzread(gz_, static_cast<char*>(dst) + got, want);
      if (r < 0) {
        int errnum = 0;
        const char* msg = gzerror(gz_, &errnum);
        LN_FAIL(path_, ": corrupt gzip data (zlib: ", msg ? msg : "unknown error", ")");
      }
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    return got;
  }

 private:
  std::string path_;
  gzFile gz_ = nullptr;
  bool gzip_ = false;
  std::uint64_t file_size_ = 0;
  std::uint32_t isize_ = 0;
};

// ---- header --------------------------------------------------------------------------------------

struct Header {
  int version = 1;
  bool swapped = false;
  std::size_t size = 348;
  std::int64_t dim[8] = {};
  int datatype = 0, bitpix = 0;
  double pixdim[8] = {};
  double vox_offset = 0;
  double scl_slope = 0, scl_inter = 0;
  int qform_code = 0, sform_code = 0;
  double quatern[3] = {}, qoffset[3] = {};
  double srow[3][4] = {};
  std::string descrip;
};

constexpr unsigned char kMagic1[4] = {'n', '+', '1', 0};
constexpr unsigned char kMagic2[8] = {'n', '+', '2', 0, '\r', '\n', 0x1a, '\n'};
const char* const kPairAdvice = "separate .hdr/.img pairs are not supported: convert it to a single .nii file";

Header read_header(Input& in, const std::string& path) {
  unsigned char h[540] = {};
  std::size_t got = in.read(h, 4);
  LN_CHECK(got > 0, path, ": empty file, not a NIfTI image");
  LN_CHECK(got == 4, path, ": truncated header (", got, " bytes; a NIfTI header has 348 or 540)");
  Header hd;
  const std::int32_t native = load<std::int32_t>(h, false), swapped = load<std::int32_t>(h, true);
  if (native == 348 || native == 540) {
    hd.version = native == 348 ? 1 : 2;
  } else if (swapped == 348 || swapped == 540) {
    hd.version = swapped == 348 ? 1 : 2;
    hd.swapped = true;
  } else {
    LN_FAIL(path, ": not a NIfTI-1 or NIfTI-2 file (sizeof_hdr is ", native, ", expected 348 or 540)");
  }
  hd.size = hd.version == 1 ? 348 : 540;
  got = 4 + in.read(h + 4, hd.size - 4);
  LN_CHECK(got == hd.size, path, ": truncated NIfTI-", hd.version, " header (", got, " of ", hd.size, " bytes)");
  const bool sw = hd.swapped;

  if (hd.version == 1) {
    const unsigned char* m = h + 344;
    if (std::memcmp(m, "ni1\0", 4) == 0) LN_FAIL(path, ": the header is of a NIfTI-1 .hdr/.img pair (magic 'ni1'); ", kPairAdvice);
    LN_CHECK(std::memcmp(m, kMagic1, 4) == 0, path, ": bad NIfTI-1 magic '", printable(m, 4), "' (expected 'n+1\\0')");
    for (int a = 0; a < 8; ++a) hd.dim[a] = load<std::int16_t>(h + 40 + 2 * a, sw);
    hd.datatype = load<std::int16_t>(h + 70, sw);
    hd.bitpix = load<std::int16_t>(h + 72, sw);
    for (int a = 0; a < 8; ++a) hd.pixdim[a] = load<float>(h + 76 + 4 * a, sw);
    hd.vox_offset = load<float>(h + 108, sw);
    hd.scl_slope = load<float>(h + 112, sw);
    hd.scl_inter = load<float>(h + 116, sw);
    hd.descrip.assign(reinterpret_cast<const char*>(h + 148), 80);
    hd.qform_code = load<std::int16_t>(h + 252, sw);
    hd.sform_code = load<std::int16_t>(h + 254, sw);
    for (int c = 0; c < 3; ++c) {
      hd.quatern[c] = load<float>(h + 256 + 4 * c, sw);
      hd.qoffset[c] = load<float>(h + 268 + 4 * c, sw);
      for (int r = 0; r < 4; ++r) hd.srow[c][r] = load<float>(h + 280 + 16 * c + 4 * r, sw);
    }
  } else {
    const unsigned char* m = h + 4;
    if (std::memcmp(m, "ni2\0", 4) == 0) LN_FAIL(path, ": the header is of a NIfTI-2 .hdr/.img pair (magic 'ni2'); ", kPairAdvice);
    LN_CHECK(std::memcmp(m, kMagic2, 4) == 0, path, ": bad NIfTI-2 magic '", printable(m, 8), "' (expected 'n+2\\0')");
    LN_CHECK(std::memcmp(m, kMagic2, 8) == 0, path, ": damaged NIfTI-2 signature '", printable(m, 8),
             "' (expected 'n+2\\0\\r\\n\\x1a\\n'; was the file transferred in text mode?)");
    hd.datatype = load<std::int16_t>(h + 12, sw);
    hd.bitpix = load<std::int16_t>(h + 14, sw);
    for (int a = 0; a < 8; ++a) hd.dim[a] = load<std::int64_t>(h + 16 + 8 * a, sw);
    for (int a = 0; a < 8; ++a) hd.pixdim[a] = load<double>(h + 104 + 8 * a, sw);
    hd.vox_offset = static_cast<double>(load<std::int64_t>(h + 168, sw));
    hd.scl_slope = load<double>(h + 176, sw);
    hd.scl_inter = load<double>(h + 184, sw);
    hd.descrip.assign(reinterpret_cast<const char*>(h + 240), 80);
    hd.qform_code = load<std::int32_t>(h + 344, sw);
    hd.sform_code = load<std::int32_t>(h + 348, sw);
    for (int c = 0; c < 3; ++c) {
      hd.quatern[c] = load<double>(h + 352 + 8 * c, sw);
      hd.qoffset[c] = load<double>(h + 376 + 8 * c, sw);
      for (int r = 0; r < 4; ++r) hd.srow[c][r] = load<double>(h + 400 + 32 * c + 8 * r, sw);
    }
  }
  hd.descrip.resize(std::strlen(hd.descrip.c_str()));
  return hd;
}

// Checks the dimensions, datatype and offset; returns the datatype.
const DType& check_header(const Header& h, const std::string& path) {
  const std::int64_t nd = h.dim[0];
  LN_CHECK(nd >= 1 && nd <= 7, path, ": dim[0] = ", nd, " is not a number of dimensions (1..7)");
  LN_CHECK(nd >= 3 && nd <= 5, path, ": a ", nd, "-D image (dim[0] = ", nd, ", dim = ", dims_str(h.dim + 1, static_cast<int>(nd)),
           "); only 3-D volumes (or 4-D/5-D with a single time point) are supported");
  for (int a = 1; a <= nd; ++a)
    LN_CHECK(h.dim[a] >= 1, path, ": dim[", a, "] = ", h.dim[a], " is not a positive size (dim = ", dims_str(h.dim + 1, static_cast<int>(nd)), ")");
  if (nd >= 4)
    LN_CHECK(h.dim[4] == 1, path, ": a 4-D series of ", h.dim[4], " time points (dim = ", dims_str(h.dim + 1, static_cast<int>(nd)),
             "); only a single 3-D volume can be read: extract one time point first");
  if (nd == 5)
    LN_CHECK(h.dim[5] == 1, path, ": a 5-D image with ", h.dim[5], " values per voxel (dim = ", dims_str(h.dim + 1, 5),
             "); only scalar 3-D volumes are supported");

  const DType* t = dtype_by_code(h.datatype);
  if (!t) {
    const char* name = unsupported_name(h.datatype);
    if (name) LN_FAIL(path, ": unsupported datatype ", name, " (code ", h.datatype, "); supported: ", supported_list());
    LN_FAIL(path, ": unknown datatype code ", h.datatype, " (supported: ", supported_list(), ")");
  }
  LN_CHECK(h.bitpix == 8 * t->bytes, path, ": bitpix is ", h.bitpix, " but datatype ", t->name, " has ", 8 * t->bytes,
           " bits per voxel");

  // Before anything is allocated: the count is bounded without overflow.
  std::int64_t n = 1;
  for (int a = 1; a <= 3; ++a) {
    LN_CHECK(h.dim[a] <= kMaxVoxels / n, path, ": the header declares ", dims_str(h.dim + 1, 3), " voxels, more than the 2^31 allowed");
    n *= h.dim[a];
  }
  LN_CHECK(std::isfinite(h.vox_offset) && h.vox_offset == std::floor(h.vox_offset), path, ": vox_offset ",
           num(h.vox_offset), " is not a whole number of bytes");
  LN_CHECK(h.vox_offset >= static_cast<double>(h.size), path, ": vox_offset ", num(h.vox_offset),
           " points inside the header (a single-file NIfTI image has its data after byte ", h.size, ")");
  LN_CHECK(h.vox_offset < 1e15, path, ": vox_offset ", num(h.vox_offset), " is beyond the end of the file");
  return *t;
}

// ---- geometry ------------------------------------------------------------------------------------

Grid grid_from_header(const Header& h, const std::string& path, NiftiInfo& info) {
  Grid g;
  const bool f32 = h.version == 1;
  for (int a = 0; a < 3; ++a) g.size[a] = h.dim[a + 1];
  // RAS -> LPS: negate x and y.
  const double flip[3] = {-1, -1, 1};
  if (h.sform_code > 0) {
    info.used_sform = true;
    for (int a = 0; a < 3; ++a) {
      Vec3 col;
      for (int r = 0; r < 3; ++r) col[r] = flip[r] * h.srow[r][a];
      const double norm = std::sqrt(dot(col, col));
      LN_CHECK(std::isfinite(norm) && norm > 0, path, ": the sform (sform_code ", h.sform_code, ") has ",
               std::isfinite(norm) ? "a zero" : "a non-finite", " column ", a, " (no voxel spacing along index ", a, ")");
      for (int r = 0; r < 3; ++r) g.axes[a][r] = col[r] / norm;
      g.spacing[a] = norm;
    }
    for (int a = 0; a < 3; ++a)
      for (int b = a + 1; b < 3; ++b) {
        const double c = dot(g.axes[a], g.axes[b]);
        LN_CHECK(std::abs(c) < 1e-3, path, ": the sform is not orthogonal: index axes ", a, " and ", b, " are at ",
                 num(std::round(std::acos(std::clamp(c, -1.0, 1.0)) * 180.0 / M_PI * 100) / 100),
                 " degrees (a sheared grid); resample it to an orthogonal grid first");
      }
    for (int r = 0; r < 3; ++r) g.origin[r] = flip[r] * h.srow[r][3];
  } else if (h.qform_code > 0) {
    double b = h.quatern[0], c = h.quatern[1], d = h.quatern[2];
    const double s = b * b + c * c + d * d;
    LN_CHECK(std::isfinite(s) && s <= 1 + 1e-4, path, ": the qform quaternion (b, c, d) = (", num(b, f32), ", ", num(c, f32), ", ",
             num(d, f32), ") is not a rotation (b^2 + c^2 + d^2 > 1)");
    double a = 0;
    if (s > 1) {  // rounding of a 180-degree rotation: renormalise
      const double k = 1 / std::sqrt(s);
      b *= k, c *= k, d *= k;
    } else {
      a = std::sqrt(1 - s);
    }
    const double R[3][3] = {{a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)},
                            {2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)},
                            {2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b}};
    const double qfac = h.pixdim[0] < 0 ? -1 : 1;
    for (int ax = 0; ax < 3; ++ax) {
      for (int r = 0; r < 3; ++r) g.axes[ax][r] = flip[r] * R[r][ax] * (ax == 2 ? qfac : 1);
      g.spacing[ax] = h.pixdim[ax + 1];
    }
    for (int r = 0; r < 3; ++r) g.origin[r] = flip[r] * h.qoffset[r];
  } else {
    info.no_orientation = true;
    for (int ax = 0; ax < 3; ++ax) g.spacing[ax] = h.pixdim[ax + 1];
  }
  if (!info.used_sform)
    LN_CHECK(std::isfinite(g.spacing[0]) && std::isfinite(g.spacing[1]) && std::isfinite(g.spacing[2]) &&
                 g.spacing[0] > 0 && g.spacing[1] > 0 && g.spacing[2] > 0,
             path, ": pixdim[1..3] = ", num(g.spacing[0], f32), ", ", num(g.spacing[1], f32), ", ", num(g.spacing[2], f32),
             " is not a positive voxel spacing");
  g.validate(path);
  return g;
}

// ---- voxel data ----------------------------------------------------------------------------------

template <typename S>
void decode_as(const unsigned char* p, std::size_t n, bool swap, double* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<double>(load<S>(p + i * sizeof(S), swap));
}

void decode(const DType& t, const unsigned char* p, std::size_t n, bool swap, double* out) {
  switch (t.code) {
    case 2: decode_as<std::uint8_t>(p, n, swap, out); break;
    case 256: decode_as<std::int8_t>(p, n, swap, out); break;
    case 4: decode_as<std::int16_t>(p, n, swap, out); break;
    case 512: decode_as<std::uint16_t>(p, n, swap, out); break;
    case 8: decode_as<std::int32_t>(p, n, swap, out); break;
    case 768: decode_as<std::uint32_t>(p, n, swap, out); break;
    case 1024: decode_as<std::int64_t>(p, n, swap, out); break;
    case 1280: decode_as<std::uint64_t>(p, n, swap, out); break;
    case 16: decode_as<float>(p, n, swap, out); break;
    default: decode_as<double>(p, n, swap, out); break;
  }
}

// Reads the header and geometry, then streams the voxels through convert(value after scl, voxel index).
// Memory grows with the data actually present, so a header that declares more than the file holds fails
// with "truncated" rather than a huge allocation.
template <typename T, typename Convert>
VolumeT<T> read_impl(const std::string& path, NiftiInfo* info_out, Convert&& convert) {
  LN_CHECK(!ends_with(path, ".hdr") && !ends_with(path, ".img") && !ends_with(path, ".hdr.gz") && !ends_with(path, ".img.gz"),
           path, ": ", kPairAdvice);
  Input in(path);
  const Header h = read_header(in, path);
  const DType& t = check_header(h, path);
  NiftiInfo info;
  info.version = h.version;
  info.datatype = t.name;
  info.qform_code = h.qform_code;
  info.sform_code = h.sform_code;
  info.description = h.descrip;
  if (std::isfinite(h.scl_slope) && h.scl_slope != 0) {
    info.scl_slope = h.scl_slope;
    info.scl_inter = std::isfinite(h.scl_inter) ? h.scl_inter : 0;
  }
  VolumeT<T> vol;
  vol.grid = grid_from_header(h, path, info);
  const Grid& g = vol.grid;

  const std::int64_t n = g.voxels();
  const std::uint64_t bytes = static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(t.bytes);
  const std::uint64_t offset = static_cast<std::uint64_t>(h.vox_offset);
  auto truncated = [&](std::uint64_t follow) {
    LN_FAIL(path, ": truncated: the header declares ", dims_str(h.dim + 1, 3), " ", t.name, " voxels (", bytes,
            " bytes) but only ", follow, " follow", in.gzip() ? " in the gzip stream" : "");
  };
  if (!in.gzip()) {
    LN_CHECK(offset <= in.file_size(), path, ": vox_offset ", offset, " is beyond the end of the file (", in.file_size(), " bytes)");
    if (bytes > in.file_size() - offset) truncated(in.file_size() - offset);
  }
  std::vector<unsigned char> raw(kChunkBytes);
  for (std::uint64_t pos = h.size; pos < offset;) {  // skip extensions up to the data
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(offset - pos, raw.size()));
    const std::size_t got = in.read(raw.data(), want);
    pos += got;
    LN_CHECK(got == want, path, ": vox_offset ", offset, " is beyond the end of the decompressed data (", pos, " bytes)");
  }

  if (!in.gzip() || in.isize_matches(offset + bytes))
    vol.v.reserve(static_cast<std::size_t>(n));
  else
    vol.v.reserve(static_cast<std::size_t>(std::min<std::int64_t>(n, std::int64_t{1} << 20)));
  std::vector<double> vals(kChunkBytes);
  const std::size_t per_chunk = kChunkBytes / static_cast<std::size_t>(t.bytes);
  std::int64_t done = 0;
  while (done < n) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::int64_t>(n - done, static_cast<std::int64_t>(per_chunk)));
    const std::size_t got = in.read(raw.data(), want * static_cast<std::size_t>(t.bytes));
    const std::size_t whole = got / static_cast<std::size_t>(t.bytes);
    decode(t, raw.data(), whole, h.swapped, vals.data());
    for (std::size_t i = 0; i < whole; ++i)
      vol.v.push_back(convert(vals[i] * info.scl_slope + info.scl_inter, done + static_cast<std::int64_t>(i), g));
    done += static_cast<std::int64_t>(whole);
    if (whole < want) truncated(static_cast<std::uint64_t>(done) * static_cast<std::uint64_t>(t.bytes) + got % static_cast<std::size_t>(t.bytes));
  }
  if (info_out) *info_out = info;
  return vol;
}

// ---- writing -------------------------------------------------------------------------------------

class Output {
 public:
  Output(const std::string& tmp, bool gzip, const std::string& path) : path_(path) {
    if (gzip) {
      gz_ = gzopen(tmp.c_str(), "wb6");
      LN_CHECK(gz_, path, ": cannot create (", std::strerror(errno), ")");
    } else {
      f_ = std::fopen(tmp.c_str(), "wb");
      LN_CHECK(f_, path, ": cannot create (", std::strerror(errno), ")");
    }
  }
  ~Output() {
    if (gz_) gzclose(gz_);
    if (f_) std::fclose(f_);
  }
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;
  void write(const void* p, std::size_t n) {
    if (n == 0) return;
    if (gz_) {
      LN_CHECK(gzwrite(gz_, p, static_cast<unsigned>(n)) == static_cast<int>(n), path_, ": write failed (disk full?)");
    } else {
      LN_CHECK(std::fwrite(p, 1, n, f_) == n, path_, ": write failed (disk full?)");
    }
  }
  void close() {
    if (gz_) {
      const int rc = gzclose(gz_);
      gz_ = nullptr;
      LN_CHECK(rc == Z_OK, path_, ": write failed (disk full?)");
    }
    if (f_) {
      const int rc = std::fclose(f_);
      f_ = nullptr;
      LN_CHECK(rc == 0, path_, ": write failed (disk full?)");
    }
  }

 private:
  std::string path_;
  gzFile gz_ = nullptr;
  FILE* f_ = nullptr;
};

struct Quatern {
  double b, c, d, qfac;
};

// The quaternion of the RAS rotation with columns ax[0..2] (qfac = -1 and the third column negated
// when the axes are left-handed), as nifti1_io's nifti_mat44_to_quatern computes it.
Quatern to_quatern(const std::array<Vec3, 3>& ax) {
  double r[3][3];  // r[row][col]; column = index axis
  for (int a = 0; a < 3; ++a)
    for (int row = 0; row < 3; ++row) r[row][a] = ax[a][row];
  const double det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1]) - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0]) +
                     r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
  Quatern q{0, 0, 0, 1};
  if (det < 0) {
    q.qfac = -1;
    for (int row = 0; row < 3; ++row) r[row][2] = -r[row][2];
  }
  double a = r[0][0] + r[1][1] + r[2][2] + 1, b, c, d;
  if (a > 0.5) {
    a = 0.5 * std::sqrt(a);
    b = 0.25 * (r[2][1] - r[1][2]) / a;
    c = 0.25 * (r[0][2] - r[2][0]) / a;
    d = 0.25 * (r[1][0] - r[0][1]) / a;
  } else {
    const double xd = 1 + r[0][0] - (r[1][1] + r[2][2]), yd = 1 + r[1][1] - (r[0][0] + r[2][2]),
                 zd = 1 + r[2][2] - (r[0][0] + r[1][1]);
    if (xd > 1) {
      b = 0.5 * std::sqrt(xd);
      c = 0.25 * (r[0][1] + r[1][0]) / b;
      d = 0.25 * (r[0][2] + r[2][0]) / b;
      a = 0.25 * (r[2][1] - r[1][2]) / b;
    } else if (yd > 1) {
      c = 0.5 * std::sqrt(yd);
      b = 0.25 * (r[0][1] + r[1][0]) / c;
      d = 0.25 * (r[1][2] + r[2][1]) / c;
      a = 0.25 * (r[0][2] - r[2][0]) / c;
    } else {
      d = 0.5 * std::sqrt(zd);
      b = 0.25 * (r[0][2] + r[2][0]) / d;
      c = 0.25 * (r[1][2] + r[2][1]) / d;
      a = 0.25 * (r[1][0] - r[0][1]) / d;
    }
    if (a < 0) b = -b, c = -c, d = -d;
  }
  q.b = b, q.c = c, q.d = d;
  return q;
}

std::vector<unsigned char> make_header(const Grid& g, const DType& t, const NiftiWriteOptions& o) {
  // RAS affine: LPS columns axes*spacing and origin, with the x and y rows negated.
  const double flip[3] = {-1, -1, 1};
  double srow[3][4];
  std::array<Vec3, 3> ras_axes;
  for (int r = 0; r < 3; ++r) {
    for (int a = 0; a < 3; ++a) {
      ras_axes[a][r] = flip[r] * g.axes[a][r];
      srow[r][a] = ras_axes[a][r] * g.spacing[a];
    }
    srow[r][3] = flip[r] * g.origin[r];
  }
  const Quatern q = to_quatern(ras_axes);
  const char descrip[] = "livernet";
  std::vector<unsigned char> h;
  if (o.version == 1) {
    h.assign(352, 0);  // header + 4-byte extension flag (no extensions)
    unsigned char* p = h.data();
    store<std::int32_t>(p, 348);
    p[38] = 'r';
    store<std::int16_t>(p + 40, 3);
    for (int a = 1; a < 8; ++a) store<std::int16_t>(p + 40 + 2 * a, static_cast<std::int16_t>(a <= 3 ? g.size[a - 1] : 1));
    store<std::int16_t>(p + 70, static_cast<std::int16_t>(t.code));
    store<std::int16_t>(p + 72, static_cast<std::int16_t>(8 * t.bytes));
    store<float>(p + 76, static_cast<float>(q.qfac));
    for (int a = 1; a < 8; ++a) store<float>(p + 76 + 4 * a, a <= 3 ? static_cast<float>(g.spacing[a - 1]) : 1.0f);
    store<float>(p + 108, 352.0f);
    store<float>(p + 112, o.scl_slope);
    store<float>(p + 116, o.scl_inter);
    p[123] = 2;  // xyzt_units: mm
    std::memcpy(p + 148, descrip, sizeof descrip);
    store<std::int16_t>(p + 252, static_cast<std::int16_t>(o.qform_code));
    store<std::int16_t>(p + 254, static_cast<std::int16_t>(o.sform_code));
    const double qv[3] = {q.b, q.c, q.d};
    for (int c = 0; c < 3; ++c) {
      store<float>(p + 256 + 4 * c, static_cast<float>(qv[c]));
      store<float>(p + 268 + 4 * c, static_cast<float>(srow[c][3]));
      for (int r = 0; r < 4; ++r) store<float>(p + 280 + 16 * c + 4 * r, static_cast<float>(srow[c][r]));
    }
    std::memcpy(p + 344, kMagic1, 4);
  } else {
    h.assign(544, 0);
    unsigned char* p = h.data();
    store<std::int32_t>(p, 540);
    std::memcpy(p + 4, kMagic2, 8);
    store<std::int16_t>(p + 12, static_cast<std::int16_t>(t.code));
    store<std::int16_t>(p + 14, static_cast<std::int16_t>(8 * t.bytes));
    store<std::int64_t>(p + 16, 3);
    for (int a = 1; a < 8; ++a) store<std::int64_t>(p + 16 + 8 * a, a <= 3 ? g.size[a - 1] : 1);
    store<double>(p + 104, q.qfac);
    for (int a = 1; a < 8; ++a) store<double>(p + 104 + 8 * a, a <= 3 ? g.spacing[a - 1] : 1.0);
    store<std::int64_t>(p + 168, 544);
    store<double>(p + 176, o.scl_slope);
    store<double>(p + 184, o.scl_inter);
    std::memcpy(p + 240, descrip, sizeof descrip);
    store<std::int32_t>(p + 344, o.qform_code);
    store<std::int32_t>(p + 348, o.sform_code);
    const double qv[3] = {q.b, q.c, q.d};
    for (int c = 0; c < 3; ++c) {
      store<double>(p + 352 + 8 * c, qv[c]);
      store<double>(p + 376 + 8 * c, srow[c][3]);
      for (int r = 0; r < 4; ++r) store<double>(p + 400 + 32 * c + 8 * r, srow[c][r]);
    }
    store<std::int32_t>(p + 500, 2);  // xyzt_units: mm
  }
  return h;
}

template <typename S>
void put(unsigned char* p, double v) {
  store<S>(p, static_cast<S>(v));
}

void encode(const DType& t, double s, unsigned char* p) {
  switch (t.code) {
    case 2: put<std::uint8_t>(p, s); break;
    case 256: put<std::int8_t>(p, s); break;
    case 4: put<std::int16_t>(p, s); break;
    case 512: put<std::uint16_t>(p, s); break;
    case 8: put<std::int32_t>(p, s); break;
    case 768: put<std::uint32_t>(p, s); break;
    case 1024: put<std::int64_t>(p, s); break;
    case 1280: put<std::uint64_t>(p, s); break;
    case 16: put<float>(p, s); break;
    default: put<double>(p, s); break;
  }
}

template <typename T>
void write_impl(const std::string& path, const VolumeT<T>& vol, const NiftiWriteOptions& o) {
  constexpr bool kLabels = std::is_integral_v<T>;
  LN_CHECK(o.version == 1 || o.version == 2, path, ": NIfTI version ", o.version, " requested (1 or 2)");
  const DType* tp = nullptr;
  for (const DType& t : kTypes)
    if (o.datatype == t.name) tp = &t;
  LN_CHECK(tp, path, ": cannot write datatype '", o.datatype, "' (supported: ", supported_list(), ")");
  const DType& t = *tp;
  LN_CHECK(o.qform_code >= 0 && o.qform_code <= 32767 && o.sform_code >= 0 && o.sform_code <= 32767, path,
           ": qform_code ", o.qform_code, " / sform_code ", o.sform_code, " out of range");
  LN_CHECK(std::isfinite(o.scl_slope) && o.scl_slope != 0 && std::isfinite(o.scl_inter), path, ": scl_slope ",
           num(o.scl_slope), " / scl_inter ", num(o.scl_inter), " (the slope must be finite and non-zero)");
  const Grid& g = vol.grid;
  g.validate(path);
  LN_CHECK(static_cast<std::int64_t>(vol.v.size()) == g.voxels(), path, ": the volume holds ", vol.v.size(),
           " values for a grid of ", g.str());
  if (o.version == 1)
    for (int a = 0; a < 3; ++a)
      LN_CHECK(g.size[a] <= 32767, path, ": ", g.str(), " does not fit NIfTI-1 (at most 32767 per axis); write version 2");

  const std::vector<unsigned char> header = make_header(g, t, o);
  const double slope = o.scl_slope, inter = o.scl_inter;
  const bool rounded = t.kind != Kind::kFloat;
  write_file_atomically(path, [&](const std::string& tmp) {
    Output out(tmp, ends_with(path, ".gz"), path);
    out.write(header.data(), header.size());
    std::vector<unsigned char> buf(kChunkBytes);
    const std::size_t per_chunk = kChunkBytes / static_cast<std::size_t>(t.bytes);
    for (std::size_t start = 0; start < vol.v.size(); start += per_chunk) {
      const std::size_t m = std::min(per_chunk, vol.v.size() - start);
      for (std::size_t i = 0; i < m; ++i) {
        const double v = static_cast<double>(vol.v[start + i]);
        const auto where = [&] { return voxel_str(g, static_cast<std::int64_t>(start + i)); };
        LN_CHECK(std::isfinite(v), path, ": ", where(), " is ", num(v), "; only finite values can be written");
        double s = (v - inter) / slope;
        if (rounded) s = std::round(s);
        LN_CHECK(s >= t.lo && s <= t.hi, path, ": ", where(), " value ", num(v), " does not fit ", t.name, " (", num(t.lo),
                 "..", num(t.hi), ") with scl_slope ", num(slope), " and scl_inter ", num(inter),
                 "; choose a wider datatype or another scl_slope");
        if (t.code == 16) s = static_cast<double>(static_cast<float>(s));
        if constexpr (kLabels)
          LN_CHECK(s * static_cast<double>(slope) + static_cast<double>(inter) == v, path, ": ", where(), " label ", num(v),
                   " is not represented exactly as ", t.name, " with scl_slope ", num(slope), " and scl_inter ", num(inter));
        encode(t, s, buf.data() + i * static_cast<std::size_t>(t.bytes));
      }
      out.write(buf.data(), m * static_cast<std::size_t>(t.bytes));
    }
    out.close();
  });
}

}  // namespace

Volume read_nifti_volume(const std::string& path, NiftiInfo* info) {
  return read_impl<float>(path, info, [&path](double v, std::int64_t n, const Grid& g) {
    const float f = static_cast<float>(v);
    LN_CHECK(std::isfinite(f), path, ": ", voxel_str(g, n), " is ", num(v), std::isfinite(v) ? " (beyond float range)" : "",
             "; non-finite HU values are not accepted");
    return f;
  });
}

LabelVolume read_nifti_labels(const std::string& path, NiftiInfo* info) {
  return read_impl<std::int32_t>(path, info, [&path](double v, std::int64_t n, const Grid& g) {
    LN_CHECK(std::isfinite(v) && v == std::floor(v), path, ": ", voxel_str(g, n), " has the non-integer value ", num(v),
             "; a label map must hold integers");
    LN_CHECK(v >= -2147483648.0 && v <= 2147483647.0, path, ": ", voxel_str(g, n), " has the label ", num(v),
             ", which does not fit 32 bits");
    return static_cast<std::int32_t>(v);
  });
}

void write_nifti(const std::string& path, const Volume& v, const NiftiWriteOptions& o) { write_impl(path, v, o); }
void write_nifti(const std::string& path, const LabelVolume& v, const NiftiWriteOptions& o) { write_impl(path, v, o); }

}  // namespace livernet::io
