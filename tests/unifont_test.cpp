// GNU Unifont .hex parsing (issue 21): 8- and 16-wide glyphs bit by bit, and corrupt lines as
// one-line errors naming the file and line.
#include <gtest/gtest.h>

#include "gannet/data/unifont.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::data;
using gannet::testing::has;
using gannet::testing::message_of;
using gannet::testing::write;

namespace {

bool ink(const UnifontGlyph& g, int row, int col) { return g.pixels[row * kGlyphCell + col] == kGlyphInk; }

class UnifontFile : public gannet::testing::TempDirTest {};

}  // namespace

TEST(Unifont, EightWideGlyphBitsAreMsbFirstAndLeftAligned) {
  // 'A': row 4 is 0x18 (00011000), row 7 is 0x42 (01000010), row 9 is 0x7E.
  const UnifontGlyph g = parse_unifont_line("0041:0000000018242442427E424242420000", "t");
  EXPECT_EQ(g.code_point, 0x41);
  EXPECT_EQ(g.width, 8);
  for (int row = 0; row < kGlyphHeight; ++row)
    for (int col = 0; col < kGlyphCell; ++col) {
      const unsigned byte = std::stoul(std::string("0000000018242442427E424242420000").substr(row * 2, 2), nullptr, 16);
      const bool want = col < 8 && (byte & (0x80u >> col));
      EXPECT_EQ(ink(g, row, col), want) << "row " << row << " col " << col;
      EXPECT_TRUE(g.pixels[row * kGlyphCell + col] == 0 || g.pixels[row * kGlyphCell + col] == kGlyphInk);
    }
  EXPECT_TRUE(ink(g, 4, 3) && ink(g, 4, 4) && !ink(g, 4, 2));
  EXPECT_TRUE(ink(g, 7, 1) && ink(g, 7, 6) && !ink(g, 7, 0) && !ink(g, 7, 7));
}

TEST(Unifont, SixteenWideGlyphFillsTheCell) {
  std::string bits = "8001";                        // row 0: leftmost and rightmost pixel
  for (int r = 1; r < 15; ++r) bits += "0100";      // rows 1-14: column 7 only
  bits += "ffff";                                   // row 15 (lower case digits too)
  const UnifontGlyph g = parse_unifont_line("4E00:" + bits, "t");
  EXPECT_EQ(g.code_point, 0x4E00);
  EXPECT_EQ(g.width, 16);
  EXPECT_TRUE(ink(g, 0, 0) && ink(g, 0, 15));
  for (int c = 1; c < 15; ++c) EXPECT_FALSE(ink(g, 0, c)) << c;
  for (int r = 1; r < 15; ++r)
    for (int c = 0; c < 16; ++c) EXPECT_EQ(ink(g, r, c), c == 7) << r << "," << c;
  for (int c = 0; c < 16; ++c) EXPECT_TRUE(ink(g, 15, c));
}

TEST(Unifont, CorruptLinesAreOneLineErrors) {
  EXPECT_TRUE(has(message_of([] { parse_unifont_line("0041 00000000", "f.hex:3"); }), "f.hex:3: no ':'"));
  EXPECT_TRUE(has(message_of([] { parse_unifont_line("0041:000000001824244242", "f.hex:3"); }),
                  "18 hex digits, not 32"));
  EXPECT_TRUE(has(message_of([] { parse_unifont_line("0041:0000000018242442427E42424242000G", "f.hex:3"); }),
                  "'G' at position 32 is not hexadecimal"));
  EXPECT_TRUE(has(message_of([] { parse_unifont_line("41:0000000018242442427E424242420000", "f.hex:3"); }),
                  "not 4 to 6 hex digits"));
  EXPECT_TRUE(has(message_of([] { parse_unifont_line("11FFFF:0000000018242442427E424242420000", "f.hex:3"); }),
                  "beyond U+10FFFF"));
}

TEST_F(UnifontFile, ReadsEveryLineAndNamesTheBadOne) {
  write(file("a.hex"), "0041:0000000018242442427E424242420000\n\n0042:0000007C4242427C4242424242427C00\r\n");
  const std::vector<UnifontGlyph> g = read_unifont_hex(file("a.hex"));
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[1].code_point, 0x42);
  write(file("b.hex"), "0041:0000000018242442427E424242420000\n0041:0000000018242442427E424242420000\n");
  EXPECT_TRUE(has(message_of([&] { read_unifont_hex(file("b.hex")); }), "b.hex:2: code point 0041 given twice"));
  write(file("c.hex"), "0041:0000000018242442427E424242420000\n0042:00007C\n");
  EXPECT_TRUE(has(message_of([&] { read_unifont_hex(file("c.hex")); }), "c.hex:2: bitmap has 6 hex digits"));
  EXPECT_TRUE(has(message_of([&] { read_unifont_hex(file("missing.hex")); }), "missing.hex"));
}
