// Value conversion between element types (host and device): floats round to nearest even; float to
// integer truncates toward zero and saturates, with NaN -> 0 (never undefined behaviour).
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/half.h"
#include "core/macros.h"

namespace livernet::kernels {

template <typename T>
inline constexpr bool is_half_type_v = std::is_same_v<T, bf16> || std::is_same_v<T, f16>;

// Any element type to double (exact for every type we have, except i64 beyond 2^53).
template <typename S>
LN_HD_INLINE double to_double(S v) {
  if constexpr (is_half_type_v<S>) return static_cast<double>(static_cast<float>(v));
  else return static_cast<double>(v);
}

template <typename D, typename S>
LN_HD_INLINE D convert(S v) {
  if constexpr (std::is_same_v<D, S>) {
    return v;
  } else if constexpr (is_half_type_v<D>) {
    if constexpr (std::is_same_v<S, float>) return D(v);
    else return D(static_cast<float>(to_double(v)));
  } else if constexpr (std::is_floating_point_v<D>) {
    if constexpr (is_half_type_v<S>) return static_cast<D>(static_cast<float>(v));
    else return static_cast<D>(v);
  } else {  // integer destination
    const double x = to_double(v);
    if (!(x == x)) return D(0);
    constexpr double lo = static_cast<double>(std::numeric_limits<D>::lowest());
    constexpr double hi = static_cast<double>(std::numeric_limits<D>::max());
    if (x <= lo) return std::numeric_limits<D>::lowest();
    if (x >= hi) return std::numeric_limits<D>::max();
    return static_cast<D>(x);
  }
}

}  // namespace livernet::kernels
