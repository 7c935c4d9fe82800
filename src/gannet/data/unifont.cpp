#include "gannet/data/unifont.h"

#include <set>
#include <sstream>

#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"

namespace gannet::data {

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

int32_t parse_code_point(const std::string& digits, const std::string& where) {
  GANNET_CHECK(digits.size() >= 4 && digits.size() <= 6, where, ": code point '", digits,
               "' is not 4 to 6 hex digits");
  int32_t cp = 0;
  for (char c : digits) {
    const int d = hex_digit(c);
    GANNET_CHECK(d >= 0, where, ": code point '", digits, "' is not hexadecimal");
    cp = cp * 16 + d;
  }
  GANNET_CHECK(cp <= 0x10FFFF, where, ": code point ", digits, " is beyond U+10FFFF");
  return cp;
}

}  // namespace

UnifontGlyph parse_unifont_line(const std::string& line, const std::string& where) {
  const size_t colon = line.find(':');
  GANNET_CHECK(colon != std::string::npos, where, ": no ':' between code point and bitmap");
  UnifontGlyph g;
  g.code_point = parse_code_point(line.substr(0, colon), where);
  std::string bits = line.substr(colon + 1);
  if (!bits.empty() && bits.back() == '\r') bits.pop_back();  // a file that went through Windows
  GANNET_CHECK(bits.size() == 32 || bits.size() == 64, where, ": bitmap has ", bits.size(),
               " hex digits, not 32 (8x16) or 64 (16x16)");
  g.width = (int)bits.size() / 4;  // 16 rows of width/4 digits each
  const int digits_per_row = g.width / 4;
  for (int row = 0; row < kGlyphHeight; ++row) {
    for (int k = 0; k < digits_per_row; ++k) {
      const char c = bits[row * digits_per_row + k];
      const int d = hex_digit(c);
      GANNET_CHECK(d >= 0, where, ": bitmap digit '", c, "' at position ", row * digits_per_row + k + 1,
                   " is not hexadecimal");
      for (int b = 0; b < 4; ++b)
        if (d & (8 >> b)) g.pixels[row * kGlyphCell + k * 4 + b] = kGlyphInk;
    }
  }
  return g;
}

std::vector<UnifontGlyph> read_unifont_hex(const std::string& path) {
  std::istringstream in(read_file(path));
  std::vector<UnifontGlyph> out;
  std::set<int32_t> seen;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line == "\r") continue;
    const std::string where = str(path, ":", n);
    out.push_back(parse_unifont_line(line, where));
    GANNET_CHECK(seen.insert(out.back().code_point).second, where, ": code point ", line.substr(0, line.find(':')),
                 " given twice");
  }
  GANNET_CHECK(!out.empty(), path, ": no glyphs (not a Unifont .hex file?)");
  return out;
}

}  // namespace gannet::data
