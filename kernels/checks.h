// Argument checks shared by the ops' front ends (kernels/*.cpp): each throws one line naming the op,
// the argument and what was wrong.
#pragma once

#include <cstdint>

#include "core/error.h"
#include "core/tensor.h"

namespace livernet::kernels {

inline void check_float(const char* op, const Tensor& t, const char* which = "input") {
  LN_CHECK(t.defined(), op, ": ", which, " is undefined");
  LN_CHECK(is_floating(t.dtype()), op, ": ", which, " must be f32, bf16 or f16, got ", dtype_name(t.dtype()));
}

inline void check_rank(const char* op, const Tensor& t, int rank, const char* which, const char* layout) {
  LN_CHECK(t.dim() == rank, op, ": ", which, " must have ", rank, " dimensions (", layout, "), got shape ",
           t.shape().str());
}

inline void check_vector(const char* op, const Tensor& t, std::int64_t n, const char* which) {
  if (!t.defined()) return;
  LN_CHECK(t.dim() == 1 && t.size(0) == n, op, ": ", which, " must have shape [", n, "], got ", t.shape().str());
  LN_CHECK(t.dtype() == DType::f32, op, ": ", which, " must be f32, got ", dtype_name(t.dtype()));
}

inline void check_scalar_f32(const char* op, const Tensor& t, const char* which) {
  LN_CHECK(t.defined() && t.numel() == 1 && t.dtype() == DType::f32, op, ": ", which,
           " must be a one-element f32 tensor");
}

}  // namespace livernet::kernels
