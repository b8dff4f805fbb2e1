#include "io/protobuf.h"

#include <cstring>

#include "core/error.h"

namespace livernet::io::pb {

void Writer::raw_varint(std::uint64_t v) {
  while (v >= 0x80) {
    out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out_.push_back(static_cast<char>(v));
}

void Writer::tag(int field, WireType t) {
  LN_CHECK(field >= 1 && field < (1 << 29), "protobuf: field number ", field, " out of range");
  raw_varint((static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint64_t>(t));
}

void Writer::varint(int field, std::uint64_t v) {
  tag(field, WireType::varint);
  raw_varint(v);
}

void Writer::float32(int field, float v) {
  tag(field, WireType::i32);
  char b[4];
  std::memcpy(b, &v, 4);  // little-endian, as the wire format (x86-64, AArch64)
  out_.append(b, 4);
}

void Writer::bytes(int field, std::string_view b) {
  tag(field, WireType::len);
  raw_varint(b.size());
  out_.append(b);
}

void Writer::packed_int64(int field, const std::vector<std::int64_t>& v) {
  Writer body;
  for (std::int64_t x : v) body.raw_varint(static_cast<std::uint64_t>(x));
  bytes(field, body.data());
}

void Writer::packed_float(int field, const std::vector<float>& v) {
  bytes(field, std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
}

float Field::as_float() const {
  const auto bits = static_cast<std::uint32_t>(value);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::uint64_t Reader::read_varint() {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    LN_CHECK(pos_ < buf_.size(), what_, ": truncated (a number runs past the end of the data)");
    const auto b = static_cast<std::uint8_t>(buf_[pos_++]);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  LN_FAIL(what_, ": malformed (a number longer than ten bytes)");
}

bool Reader::next(Field& f) {
  if (pos_ >= buf_.size()) return false;
  const std::uint64_t key = read_varint();
  const std::uint64_t number = key >> 3;
  LN_CHECK(number >= 1 && number < (1u << 29), what_, ": malformed (field number ", number, ")");
  f.number = static_cast<int>(number);
  f.bytes = {};
  f.value = 0;
  switch (key & 7) {
    case 0:
      f.type = WireType::varint;
      f.value = read_varint();
      return true;
    case 1:
    case 5: {
      const std::size_t n = (key & 7) == 1 ? 8 : 4;
      LN_CHECK(buf_.size() - pos_ >= n, what_, ": truncated (a fixed-size value runs past the end of the data)");
      std::uint64_t v = 0;
      std::memcpy(&v, buf_.data() + pos_, n);
      pos_ += n;
      f.type = n == 8 ? WireType::i64 : WireType::i32;
      f.value = v;
      return true;
    }
    case 2: {
      const std::uint64_t n = read_varint();
      LN_CHECK(n <= buf_.size() - pos_, what_, ": truncated (field ", f.number, " says ", n, " bytes, ",
               buf_.size() - pos_, " are left)");
      f.type = WireType::len;
      f.bytes = buf_.substr(pos_, static_cast<std::size_t>(n));
      pos_ += static_cast<std::size_t>(n);
      return true;
    }
    default:
      LN_FAIL(what_, ": malformed (field ", f.number, " has wire type ", key & 7, ", which ONNX does not use)");
  }
}

void Reader::append_int64(const Field& f, std::vector<std::int64_t>& out, const std::string& what) {
  if (f.type == WireType::varint) {
    out.push_back(f.as_int64());
    return;
  }
  LN_CHECK(f.type == WireType::len, what, ": field ", f.number, " should hold integers");
  Reader r(f.bytes, what);
  while (r.pos_ < r.buf_.size()) out.push_back(static_cast<std::int64_t>(r.read_varint()));
}

void Reader::append_float(const Field& f, std::vector<float>& out, const std::string& what) {
  if (f.type == WireType::i32) {
    out.push_back(f.as_float());
    return;
  }
  LN_CHECK(f.type == WireType::len && f.bytes.size() % 4 == 0, what, ": field ", f.number, " should hold floats");
  const std::size_t n = f.bytes.size() / 4, at = out.size();
  out.resize(at + n);
  if (n) std::memcpy(out.data() + at, f.bytes.data(), n * 4);
}

}  // namespace livernet::io::pb
