// Size arithmetic on values read from files: every product or sum that becomes an offset, a byte
// count or an allocation is computed with overflow detection, so that a header value of 2^61 is
// an error rather than a small number after wrapping.
#pragma once
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

#include "gannet/core/error.h"

namespace gannet {

// a * b, or nothing when it does not fit in T.
template <class T>
std::optional<T> mul_no_overflow(T a, T b) {
  static_assert(std::is_integral_v<T>);
  T out;
  if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}

// a + b, or nothing when it does not fit in T.
template <class T>
std::optional<T> add_no_overflow(T a, T b) {
  static_assert(std::is_integral_v<T>);
  T out;
  if (__builtin_add_overflow(a, b, &out)) return std::nullopt;
  return out;
}

// a - b, or nothing when it does not fit in T.
template <class T>
std::optional<T> sub_no_overflow(T a, T b) {
  static_assert(std::is_integral_v<T>);
  T out;
  if (__builtin_sub_overflow(a, b, &out)) return std::nullopt;
  return out;
}

// a * b; throws gannet::Error "<what>: a * b overflows" when it does not fit in T.
template <class T>
T checked_mul(T a, T b, const std::string& what) {
  if (auto r = mul_no_overflow(a, b)) return *r;
  fail(str(what, ": ", a, " * ", b, " overflows"));
}

// a + b; throws gannet::Error "<what>: a + b overflows" when it does not fit in T.
template <class T>
T checked_add(T a, T b, const std::string& what) {
  if (auto r = add_no_overflow(a, b)) return *r;
  fail(str(what, ": ", a, " + ", b, " overflows"));
}

}  // namespace gannet

namespace gannet {

// A double read from a file (JSON numbers are doubles) as the float it is used as: nothing when
// it is not finite, or is finite as a double but not as a float (|v| > FLT_MAX: 1e39 would
// become inf).
inline std::optional<float> to_finite_float(double v) {
  if (!(v >= -(double)std::numeric_limits<float>::max() && v <= (double)std::numeric_limits<float>::max()))
    return std::nullopt;
  return (float)v;
}

}  // namespace gannet
