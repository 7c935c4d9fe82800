#include "gannet/core/number_range.h"

#include <charconv>
#include <cmath>

#include "gannet/core/error.h"

namespace gannet {

std::string format_number(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that reads back as v
  return ec == std::errc() ? std::string(buf, end) : str(v);
}

bool NumberRange::contains(double v) const {
  if (!std::isfinite(v)) return false;
  if (lo_open ? !(v > lo) : !(v >= lo)) return false;
  return hi_open ? v < hi : v <= hi;
}

std::string NumberRange::describe() const {
  const bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
  if (has_lo && has_hi)
    return str("in ", lo_open ? "(" : "[", format_number(lo), ", ", format_number(hi), hi_open ? ")" : "]");
  if (has_lo) return str(lo_open ? "> " : ">= ", format_number(lo));
  if (has_hi) return str(hi_open ? "< " : "<= ", format_number(hi));
  return "finite";
}

std::string NumberRange::interval() const {
  const std::string l = std::isfinite(lo) ? format_number(lo) : "-inf", h = std::isfinite(hi) ? format_number(hi) : "inf";
  return str(lo_open || !std::isfinite(lo) ? "(" : "[", l, ", ", h, hi_open || !std::isfinite(hi) ? ")" : "]");
}

std::string out_of_range_message(const NumberRange& range, const std::string& got) {
  return str("must be ", range.describe(), ", got ", got);
}

}  // namespace gannet
