// Runs a block of code with `T` bound to the C++ type of a runtime dtype.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/error.h"
#include "core/half.h"

#define LN_CASE_TYPE(enum_value, type, T, ...) \
  case enum_value: {                           \
    using T = type;                            \
    __VA_ARGS__;                               \
    break;                                     \
  }

// f32, bf16, f16
#define LN_SWITCH_FLOAT(dtype, what, T, ...)                                                       \
  switch (dtype) {                                                                                 \
    LN_CASE_TYPE(::livernet::DType::f32, float, T, __VA_ARGS__)                                    \
    LN_CASE_TYPE(::livernet::DType::bf16, ::livernet::bf16, T, __VA_ARGS__)                        \
    LN_CASE_TYPE(::livernet::DType::f16, ::livernet::f16, T, __VA_ARGS__)                          \
    default: LN_FAIL(what, ": unsupported dtype ", ::livernet::dtype_name(dtype));                 \
  }

// every dtype
#define LN_SWITCH_ALL(dtype, what, T, ...)                                                         \
  switch (dtype) {                                                                                 \
    LN_CASE_TYPE(::livernet::DType::f32, float, T, __VA_ARGS__)                                    \
    LN_CASE_TYPE(::livernet::DType::bf16, ::livernet::bf16, T, __VA_ARGS__)                        \
    LN_CASE_TYPE(::livernet::DType::f16, ::livernet::f16, T, __VA_ARGS__)                          \
    LN_CASE_TYPE(::livernet::DType::i32, std::int32_t, T, __VA_ARGS__)                             \
    LN_CASE_TYPE(::livernet::DType::i64, std::int64_t, T, __VA_ARGS__)                             \
    LN_CASE_TYPE(::livernet::DType::u8, std::uint8_t, T, __VA_ARGS__)                              \
    default: LN_FAIL(what, ": unsupported dtype ", ::livernet::dtype_name(dtype));                 \
  }
