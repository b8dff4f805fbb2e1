#include "core/dtype.h"

#include "core/error.h"

namespace livernet {

DType parse_dtype(std::string_view name) {
  if (name == "f32" || name == "float32" || name == "float") return DType::f32;
  if (name == "bf16" || name == "bfloat16") return DType::bf16;
  if (name == "f16" || name == "float16" || name == "half") return DType::f16;
  if (name == "i32" || name == "int32") return DType::i32;
  if (name == "i64" || name == "int64") return DType::i64;
  if (name == "u8" || name == "uint8") return DType::u8;
  LN_FAIL("unknown dtype '", name, "' (expected f32, bf16, f16, i32, i64 or u8)");
}

}  // namespace livernet
