// A number as text through a printf format, for progress lines and reports.
#pragma once
#include <cstdio>
#include <string>

namespace gannet {

// format_number("%.2f%%", 12.345) == "12.35%". `format` takes exactly one double.
inline std::string format_number(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// v with `digits` digits after the point: fixed(3.14159, 2) == "3.14".
inline std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace gannet
