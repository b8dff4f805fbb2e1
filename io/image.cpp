#include "io/image.h"

#include <png.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "core/error.h"
#include "kernels/tensor_ops.h"

namespace livernet::io {

// ---- .npy ----------------------------------------------------------------------------------------

namespace {

struct NpyHeader {
  std::string descr;
  bool fortran = false;
  std::vector<std::int64_t> shape;
};

// Parses the Python-dict header: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
NpyHeader parse_npy_header(const std::string& h, const std::string& path) {
  NpyHeader out;
  auto value_of = [&](const std::string& key) -> std::string {
    const std::size_t k = h.find("'" + key + "'");
    LN_CHECK(k != std::string::npos, path, ": .npy header has no '", key, "'");
    const std::size_t colon = h.find(':', k);
    LN_CHECK(colon != std::string::npos, path, ": malformed .npy header");
    return h.substr(colon + 1);
  };
  std::string d = value_of("descr");
  const std::size_t q1 = d.find('\''), q2 = d.find('\'', q1 + 1);
  LN_CHECK(q1 != std::string::npos && q2 != std::string::npos, path, ": malformed 'descr' in the .npy header");
  out.descr = d.substr(q1 + 1, q2 - q1 - 1);
  const std::string f = value_of("fortran_order");
  out.fortran = f.find("True") < f.find_first_of(",}");
  std::string s = value_of("shape");
  const std::size_t p1 = s.find('('), p2 = s.find(')');
  LN_CHECK(p1 != std::string::npos && p2 != std::string::npos && p2 > p1, path, ": malformed 'shape' in the .npy header");
  std::string dims = s.substr(p1 + 1, p2 - p1 - 1);
  std::size_t i = 0;
  while (i < dims.size()) {
    while (i < dims.size() && (dims[i] == ' ' || dims[i] == ',')) ++i;
    if (i >= dims.size()) break;
    std::size_t j = i;
    while (j < dims.size() && std::isdigit(static_cast<unsigned char>(dims[j]))) ++j;
    LN_CHECK(j > i && j - i <= 15, path, ": bad extent in the .npy shape '", printable(dims), "'");
    out.shape.push_back(std::stoll(dims.substr(i, j - i)));
    i = j;
  }
  LN_CHECK(out.shape.size() <= static_cast<std::size_t>(Shape::kMaxDims), path, ": .npy array has too many dimensions");
  return out;
}

}  // namespace

Tensor read_npy(const std::string& path, std::int64_t max_elements) {
  std::ifstream in(path, std::ios::binary);
  LN_CHECK(in, path, ": cannot open");
  char magic[8] = {};
  in.read(magic, 8);
  LN_CHECK(in.gcount() == 8 && std::memcmp(magic, "\x93NUMPY", 6) == 0, path, ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(magic[6]);
  LN_CHECK(major >= 1 && major <= 3, path, ": unsupported .npy version ", major);
  std::uint32_t hlen = 0;
  if (major == 1) {
    unsigned char b[2];
    in.read(reinterpret_cast<char*>(b), 2);
    hlen = b[0] | (b[1] << 8);
  } else {
    unsigned char b[4];
    in.read(reinterpret_cast<char*>(b), 4);
    hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
  }
  LN_CHECK(in && hlen > 0 && hlen < (1u << 20), path, ": truncated or bad .npy header");
  std::string header(hlen, '\0');
  in.read(header.data(), hlen);
  LN_CHECK(static_cast<std::uint32_t>(in.gcount()) == hlen, path, ": truncated .npy header");
  const NpyHeader h = parse_npy_header(header, path);
  LN_CHECK(!h.fortran, path, ": Fortran-order arrays are not supported (save with np.ascontiguousarray)");
  LN_CHECK(h.descr.size() >= 3, path, ": unsupported dtype '", printable(h.descr), "'");
  const char endian = h.descr[0], kind = h.descr[1];
  const int size = std::atoi(h.descr.c_str() + 2);
  LN_CHECK(endian == '<' || endian == '|' || (endian == '=' ), path, ": big-endian .npy data is not supported");
  Shape shape;
  std::int64_t n = 1;
  for (std::int64_t d : h.shape) {
    LN_CHECK(d >= 0 && (d == 0 || n <= max_elements / d), path, ": .npy shape is too large (more than ", max_elements,
             " elements)");
    n *= d;
    shape.push_back(d);
  }
  DType dt;
  if (kind == 'f' && (size == 4 || size == 8)) dt = DType::f32;
  else if ((kind == 'u' && size == 1) || (kind == 'b' && size == 1)) dt = DType::u8;
  else if ((kind == 'i' && (size == 1 || size == 2 || size == 4)) || (kind == 'u' && size == 2)) dt = DType::i32;
  else if ((kind == 'i' && size == 8) || (kind == 'u' && size == 4)) dt = DType::i64;
  else LN_FAIL(path, ": unsupported .npy dtype '", printable(h.descr), "'");
  // Before allocating: the data the header declares must be in the file.
  const std::uint64_t need = static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(size);
  const std::streamoff data_at = in.tellg();
  in.seekg(0, std::ios::end);
  const std::streamoff file_end = in.tellg();
  in.seekg(data_at);
  LN_CHECK(in && data_at >= 0 && file_end >= data_at, path, ": cannot determine the .npy file size");
  const auto have = static_cast<std::uint64_t>(file_end - data_at);
  LN_CHECK(have >= need, path, ": truncated .npy data (", have, " of ", need, " bytes)");
  std::vector<char> raw(static_cast<std::size_t>(need));
  in.read(raw.data(), static_cast<std::streamsize>(raw.size()));
  LN_CHECK(static_cast<std::size_t>(in.gcount()) == raw.size(), path, ": truncated .npy data (", in.gcount(), " of ",
           raw.size(), " bytes)");
  Tensor t = Tensor::empty(shape, dt);
  auto convert = [&](auto* dst) {
    using D = std::remove_pointer_t<decltype(dst)>;
    for (std::int64_t i = 0; i < n; ++i) {
      const char* p = raw.data() + i * size;
      if (kind == 'f' && size == 4) { float v; std::memcpy(&v, p, 4); dst[i] = static_cast<D>(v); }
      else if (kind == 'f') { double v; std::memcpy(&v, p, 8); dst[i] = static_cast<D>(v); }
      else if (kind == 'i' && size == 1) dst[i] = static_cast<D>(static_cast<std::int8_t>(*p));
      else if (kind == 'i' && size == 2) { std::int16_t v; std::memcpy(&v, p, 2); dst[i] = static_cast<D>(v); }
      else if (kind == 'i' && size == 4) { std::int32_t v; std::memcpy(&v, p, 4); dst[i] = static_cast<D>(v); }
      else if (kind == 'i') { std::int64_t v; std::memcpy(&v, p, 8); dst[i] = static_cast<D>(v); }
      else if (size == 1) dst[i] = static_cast<D>(static_cast<std::uint8_t>(*p));
      else if (size == 2) { std::uint16_t v; std::memcpy(&v, p, 2); dst[i] = static_cast<D>(v); }
      else { std::uint32_t v; std::memcpy(&v, p, 4); dst[i] = static_cast<D>(v); }
    }
  };
  switch (dt) {
    case DType::f32: convert(t.data<float>()); break;
    case DType::u8: convert(t.data<std::uint8_t>()); break;
    case DType::i32: convert(t.data<std::int32_t>()); break;
    default: convert(t.data<std::int64_t>()); break;
  }
  return t;
}

void write_npy(const std::string& path, const Tensor& t_in) {
  Tensor t = t_in.to(Device::cpu());
  if (t.dtype() == DType::bf16 || t.dtype() == DType::f16) t = to_dtype(t, DType::f32);
  const char* descr = t.dtype() == DType::f32 ? "<f4" : t.dtype() == DType::i32 ? "<i4" : t.dtype() == DType::i64 ? "<i8" : "|u1";
  std::string shape = "(";
  for (std::int64_t d : t.shape()) shape += std::to_string(d) + ", ";
  if (t.dim() > 1) shape.resize(shape.size() - 1);
  if (t.dim() > 1) shape.pop_back();
  shape += ")";
  std::string header = str_cat("{'descr': '", descr, "', 'fortran_order': False, 'shape': ", shape, ", }");
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  LN_CHECK(out, path, ": cannot create");
  out.write("\x93NUMPY\x01\x00", 8);
  const unsigned char len[2] = {static_cast<unsigned char>(header.size() & 0xff), static_cast<unsigned char>(header.size() >> 8)};
  out.write(reinterpret_cast<const char*>(len), 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  LN_CHECK(out.good(), path, ": write failed (disk full?)");
}

// ---- PNG ----------------------------------------------------------------------------------------

namespace {
void png_error_fn(png_structp png, png_const_charp msg) {
  *static_cast<std::string*>(png_get_error_ptr(png)) = msg;
  png_longjmp(png, 1);
}
void png_warning_fn(png_structp, png_const_charp) {}
}  // namespace

Tensor read_png(const std::string& path, int* bit_depth_out) {
  std::unique_ptr<FILE, int (*)(FILE*)> fp(std::fopen(path.c_str(), "rb"), &std::fclose);
  LN_CHECK(fp, path, ": cannot open");
  unsigned char sig[8] = {};
  LN_CHECK(std::fread(sig, 1, 8, fp.get()) == 8 && png_sig_cmp(sig, 0, 8) == 0, path, ": not a PNG file");
  // The pixels can be at most zlib's 1032:1 larger than the file: the bound for what a header may declare.
  LN_CHECK(std::fseek(fp.get(), 0, SEEK_END) == 0, path, ": cannot seek");
  const long file_size = std::ftell(fp.get());
  LN_CHECK(file_size > 0 && std::fseek(fp.get(), 8, SEEK_SET) == 0, path, ": cannot seek");
  const std::uint64_t max_pixel_bytes = static_cast<std::uint64_t>(file_size) * 1100 + (1 << 16);
  std::string err;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_error_fn, png_warning_fn);
  LN_CHECK(png, path, ": libpng initialisation failed");
  png_infop info = png_create_info_struct(png);
  std::vector<unsigned char> pixels;
  std::vector<png_bytep> rows;
  png_uint_32 width = 0, height = 0;
  int depth = 0, channels = 0;
  // libpng reports errors with longjmp: keep only plain data on this frame between setjmp and the calls.
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    LN_FAIL(path, ": corrupt PNG (", err.empty() ? "libpng error" : printable(err), ")");
  }
  png_init_io(png, fp.get());
  png_set_sig_bytes(png, 8);
  png_set_user_limits(png, 1 << 15, 1 << 15);
  png_read_info(png, info);
  width = png_get_image_width(png, info);
  height = png_get_image_height(png, info);
  depth = png_get_bit_depth(png, info);
  const int color = png_get_color_type(png, info);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  png_set_strip_alpha(png);  // also the alpha that a palette's tRNS expands to
  if (depth == 16) png_set_swap(png);  // little-endian 16-bit samples
  png_read_update_info(png, info);
  depth = png_get_bit_depth(png, info);
  channels = png_get_channels(png, info);
  const std::size_t stride = png_get_rowbytes(png, info);
  if (static_cast<std::uint64_t>(stride) * height > max_pixel_bytes)
    png_error(png, "the header declares more pixels than the file can hold");
  pixels.resize(stride * height);
  rows.resize(height);
  for (png_uint_32 r = 0; r < height; ++r) rows[r] = pixels.data() + r * stride;
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  LN_CHECK(width > 0 && height > 0 && (channels == 1 || channels == 3), path, ": unsupported PNG layout (", channels,
           " channels)");
  Tensor t = Tensor::empty(Shape{static_cast<std::int64_t>(height), static_cast<std::int64_t>(width), channels});
  float* dst = t.data<float>();
  const std::size_t n = static_cast<std::size_t>(width) * height * channels;
  for (std::size_t i = 0; i < n; ++i) {
    if (depth == 16) {
      std::uint16_t v;
      std::memcpy(&v, pixels.data() + 2 * i, 2);
      dst[i] = v;
    } else {
      dst[i] = pixels[i];
    }
  }
  if (bit_depth_out) *bit_depth_out = depth;
  return t;
}

namespace {
// Encodes to any libpng writer (a FILE* or a memory buffer).
void encode_png_to(const Tensor& image_in, const std::string& what, FILE* fp, std::string* mem) {
  const Tensor image = to_dtype(image_in.to(Device::cpu()), DType::f32);
  LN_CHECK(image.dim() == 3 && (image.size(2) == 1 || image.size(2) == 3), what, ": PNG needs [H, W, 1|3], got ",
           image.shape().str());
  const auto h = static_cast<png_uint_32>(image.size(0)), w = static_cast<png_uint_32>(image.size(1));
  const int c = static_cast<int>(image.size(2));
  std::vector<unsigned char> px(static_cast<std::size_t>(h) * w * c);
  const float* src = image.data<float>();
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<unsigned char>(std::min(255.f, std::max(0.f, src[i] + 0.5f)));
  std::string err;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, png_error_fn, png_warning_fn);
  png_infop info = png_create_info_struct(png);
  std::vector<png_bytep> rows(h);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    LN_FAIL(what, ": PNG write failed (", err, ")");
  }
  if (fp) {
    png_init_io(png, fp);
  } else {
    png_set_write_fn(png, mem, [](png_structp p, png_bytep data, png_size_t n) {
      static_cast<std::string*>(png_get_io_ptr(p))->append(reinterpret_cast<const char*>(data), n);
    }, [](png_structp) {});
  }
  png_set_IHDR(png, info, w, h, 8, c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (png_uint_32 r = 0; r < h; ++r) rows[r] = px.data() + static_cast<std::size_t>(r) * w * c;
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
}
}  // namespace

std::string encode_png(const Tensor& image) {
  std::string out;
  encode_png_to(image, "PNG encoder", nullptr, &out);
  return out;
}

std::string base64(const std::string& b) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < b.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(b[i]) << 16) | (static_cast<unsigned char>(b[i + 1]) << 8) |
                       static_cast<unsigned char>(b[i + 2]);
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += t[v & 63];
  }
  if (i + 1 == b.size()) {
    const unsigned v = static_cast<unsigned char>(b[i]) << 16;
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == b.size()) {
    const unsigned v = (static_cast<unsigned char>(b[i]) << 16) | (static_cast<unsigned char>(b[i + 1]) << 8);
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

void write_png(const std::string& path, const Tensor& image) {
  std::unique_ptr<FILE, int (*)(FILE*)> fp(std::fopen(path.c_str(), "wb"), &std::fclose);
  LN_CHECK(fp, path, ": cannot create");
  encode_png_to(image, path, fp.get(), nullptr);
}

}  // namespace livernet::io
