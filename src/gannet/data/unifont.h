// GNU Unifont's .hex format (Debian `unifont`: /usr/share/unifont/unifont.hex): one glyph a line,
// "XXXX:" (4 to 6 hex digits of the code point) then 32 hex digits (an 8x16 glyph) or 64 (16x16),
// one bit per pixel, row-major, most significant bit first.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace gannet::data {

constexpr int kGlyphHeight = 16;
constexpr int kGlyphCell = 16;     // every glyph is placed in a 16x16 cell
constexpr uint8_t kGlyphInk = 255;  // an inked pixel (paper is 0), as in 8-bit greyscale images

struct UnifontGlyph {
  int32_t code_point = 0;
  int width = 0;  // 8 or 16
  // 16 rows of 16 pixels, 0 or kGlyphInk. An 8-wide glyph fills columns 0-7 (left-aligned, as a
  // text renderer draws it in its half-width cell); columns 8-15 stay 0.
  std::array<uint8_t, kGlyphCell * kGlyphHeight> pixels{};
};

// One line (without its newline). `where` names it in errors ("unifont.hex:12"). Throws a one-line
// gannet::Error for a missing colon, a bad code point, a digit count other than 32 or 64, or a
// non-hex digit.
UnifontGlyph parse_unifont_line(const std::string& line, const std::string& where);

// Every glyph of a .hex file, in file order; blank lines are skipped. Throws naming the file and
// line for a corrupt line, and for a code point given twice.
std::vector<UnifontGlyph> read_unifont_hex(const std::string& path);

}  // namespace gannet::data
