// The protocol buffers wire format (https://protobuf.dev/programming-guides/encoding/), enough to write and
// read ONNX files (models/onnx.h) without a protobuf library: varints (field types int32/int64/enum/bool),
// 64- and 32-bit fixed values (double, float), and length-delimited fields (strings, bytes, embedded
// messages, packed repeated scalars). Field numbers and meanings belong to the schema's user.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace livernet::io::pb {

enum class WireType : std::uint8_t { varint = 0, i64 = 1, len = 2, i32 = 5 };

// Appends fields to a message. Nested messages are written into their own Writer and added with message().
class Writer {
 public:
  void varint(int field, std::uint64_t v);
  // int32/int64 fields: negative values take ten bytes, as protobuf writes them.
  void int64(int field, std::int64_t v) { varint(field, static_cast<std::uint64_t>(v)); }
  void float32(int field, float v);
  void bytes(int field, std::string_view b);
  void string(int field, std::string_view s) { bytes(field, s); }
  void message(int field, const Writer& m) { bytes(field, m.data()); }
  // Packed repeated int64 (proto3 default for repeated scalars; ONNX's proto2 readers accept both).
  void packed_int64(int field, const std::vector<std::int64_t>& v);
  void packed_float(int field, const std::vector<float>& v);
  const std::string& data() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void tag(int field, WireType t);
  void raw_varint(std::uint64_t v);
  std::string out_;
};

// One field as read: its number, wire type, and value (varint / fixed bits, or the bytes of a
// length-delimited field, which view the buffer handed to the Reader).
struct Field {
  int number = 0;
  WireType type = WireType::varint;
  std::uint64_t value = 0;
  std::string_view bytes;
  std::int64_t as_int64() const { return static_cast<std::int64_t>(value); }
  float as_float() const;
};

// Reads the fields of one message in order. Every length and varint is bounds-checked: a truncated or
// malformed buffer throws Error("<what>: ...") and never reads past the end. Group wire types (3, 4),
// unused by ONNX, are refused.
class Reader {
 public:
  Reader(std::string_view buf, std::string what) : buf_(buf), what_(std::move(what)) {}
  bool next(Field& f);
  const std::string& what() const { return what_; }

  // The elements of a repeated scalar field, packed (len) or not (one varint/fixed per field).
  static void append_int64(const Field& f, std::vector<std::int64_t>& out, const std::string& what);
  static void append_float(const Field& f, std::vector<float>& out, const std::string& what);

 private:
  std::uint64_t read_varint();
  std::string_view buf_;
  std::size_t pos_ = 0;
  std::string what_;
};

}  // namespace livernet::io::pb
