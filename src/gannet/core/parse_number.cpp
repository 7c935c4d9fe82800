#include "gannet/core/parse_number.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "gannet/core/error.h"

namespace gannet {

namespace {
template <class T>
T parse(std::string_view text, std::string_view field, const char* what) {
  T value{};
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec == std::errc::result_out_of_range)
    fail(str(field, ": ", quote_text(text), " is out of range for ", what));
  if (ec != std::errc() || ptr != end || text.empty()) fail(str(field, ": expected ", what, ", got ", quote_text(text)));
  return value;
}
}  // namespace

int64_t parse_int64(std::string_view text, std::string_view field) {
  return parse<int64_t>(text, field, "an integer");
}

uint64_t parse_uint64(std::string_view text, std::string_view field) {
  return parse<uint64_t>(text, field, "a non-negative integer");
}

double parse_double(std::string_view text, std::string_view field) {
  const double v = parse<double>(text, field, "a number");
  GANNET_CHECK(std::isfinite(v), field, ": expected a finite number, got ", quote_text(text));
  return v;
}

std::string quote_text(std::string_view text) {
  constexpr size_t kMax = 64;
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < kMax; ++i) {
    const unsigned char c = (unsigned char)text[i];
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += (char)c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (text.size() > kMax) out += "...";
  return out + "'";
}

}  // namespace gannet
