// Element types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace livernet {

enum class DType : std::uint8_t { f32, bf16, f16, i32, i64, u8 };

constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::bf16: return 2;
    case DType::f16: return 2;
    case DType::i32: return 4;
    case DType::i64: return 8;
    case DType::u8: return 1;
  }
  return 0;
}

constexpr const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::bf16: return "bf16";
    case DType::f16: return "f16";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::u8: return "u8";
  }
  return "?";
}

constexpr bool is_floating(DType t) { return t == DType::f32 || t == DType::bf16 || t == DType::f16; }

// Parses "f32", "float32", "bf16", "bfloat16", "f16", "float16", "half", "i32", "int32", "i64", "int64", "u8", "uint8".
DType parse_dtype(std::string_view name);

}  // namespace livernet
