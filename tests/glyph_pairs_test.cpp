// Glyph image-text pairs (issue 21): UnicodeData.txt ranges and Blocks.txt, which names pair with
// a glyph, the split by block and by character, the written files, idempotency, the CLI's option
// checks, and the real Debian files when they are installed.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "command_output.h"
#include "gannet/core/atomic_file.h"
#include "gannet/data/glyph_pairs.h"
#include "gannet/io/safetensors.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::data;
using gannet::testing::has;
using gannet::testing::message_of;
using gannet::testing::write;
namespace fs = std::filesystem;

namespace {

const char* kUnicodeData =
    "0000;<control>;Cc;0;BN;;;;;N;NULL;;;;\n"
    "0001;<control>;Cc;0;BN;;;;;N;;;;;\n"
    "0041;LATIN CAPITAL LETTER A;Lu;0;L;;;;;N;;;;0061;\n"
    "0042;LATIN CAPITAL LETTER B;Lu;0;L;;;;;N;;;;0062;\n"
    "0061;LATIN SMALL LETTER A;Ll;0;L;;;;;N;;;0041;;0041\n"
    "0100;LATIN CAPITAL LETTER A WITH MACRON;Lu;0;L;0041 0304;;;;N;LATIN CAPITAL LETTER A MACRON;;;0101;\n"
    "0391;GREEK CAPITAL LETTER ALPHA;Lu;0;L;;;;;N;;;;03B1;\n"
    "4E00;<CJK Ideograph, First>;Lo;0;L;;;;;N;;;;;\n"
    "9FFF;<CJK Ideograph, Last>;Lo;0;L;;;;;N;;;;;\n"
    "F900;CJK COMPATIBILITY IDEOGRAPH-F900;Lo;0;L;8C48;;;;N;;;;;\n";

const char* kBlocks =
    "# Blocks-15.0.0.txt\n\n"
    "0000..007F; Basic Latin\n"
    "0370..03FF; Greek and Coptic  # a comment\n"
    "4E00..9FFF; CJK Unified Ideographs\n"
    "F900..FAFF; CJK Compatibility Ideographs\n";

std::string hex_line(const char* cp) { return std::string(cp) + ":0000000018242442427E424242420000\n"; }

// Nine glyphs: four pair (0000 NULL, 0041, 0042, 0061 in Basic Latin, 0391 in Greek: five), and
// one of each reason to leave a glyph out.
std::string unifont_text() {
  std::string s;
  for (const char* cp : {"0000", "0001", "0041", "0042", "0061", "0100", "0378", "0391", "4E00", "F900"}) s += hex_line(cp);
  return s;
}

class GlyphFiles : public gannet::testing::TempDirTest {
 protected:
  GlyphsOptions write_inputs() {
    write(file("unifont.hex"), unifont_text());
    write(file("UnicodeData.txt"), kUnicodeData);
    write(file("Blocks.txt"), kBlocks);
    GlyphsOptions o;
    o.out_dir = file("out");
    o.unifont_hex = file("unifont.hex");
    o.unicode_data = file("UnicodeData.txt");
    o.blocks = file("Blocks.txt");
    o.split.block_fraction = 0.3;  // of 5 pairs: 2 at most, so Greek (1 pair) and never Basic Latin (4)
    o.split.char_fraction = 0.0;
    return o;
  }
};

// 30 blocks of 5, 8, 11, ... characters each.
std::vector<UnicodeBlock> synthetic_blocks() {
  std::vector<UnicodeBlock> b;
  for (int k = 0; k < 30; ++k) b.push_back({k * 256, k * 256 + 255, "Block " + std::to_string(k)});
  return b;
}

std::vector<GlyphPair> synthetic_pairs() {
  std::vector<GlyphPair> p;
  for (int k = 0; k < 30; ++k)
    for (int i = 0; i < 5 + 3 * k; ++i) {
      GlyphPair g;
      g.glyph.code_point = k * 256 + i;
      g.block = k;
      p.push_back(g);
    }
  return p;
}

}  // namespace

TEST(UnicodeNames, RangeLinesBecomeOneEntryAndControlsKeepTheirOldName) {
  const std::vector<UnicodeEntry> e = parse_unicode_data(kUnicodeData, "UnicodeData.txt");
  ASSERT_EQ(e.size(), 9u);
  EXPECT_EQ(e[0].name, "<control>");
  EXPECT_EQ(e[0].old_name, "NULL");
  EXPECT_EQ(e[2].category, "Lu");
  const UnicodeEntry& cjk = e[7];
  EXPECT_TRUE(cjk.is_range);
  EXPECT_EQ(cjk.first, 0x4E00);
  EXPECT_EQ(cjk.last, 0x9FFF);
  EXPECT_EQ(cjk.name, "CJK Ideograph");
  EXPECT_EQ(e[8].first, 0xF900);
}

TEST(UnicodeNames, MalformedDataIsAnErrorNamingTheLine) {
  EXPECT_TRUE(has(message_of([] { parse_unicode_data("0041;LATIN CAPITAL LETTER A;Lu\n", "U.txt"); }),
                  "U.txt:1: 3 fields, not 15"));
  EXPECT_TRUE(has(message_of([] { parse_unicode_data("4E00;<CJK Ideograph, First>;Lo;0;L;;;;;N;;;;;\n", "U.txt"); }),
                  "never closed"));
  EXPECT_TRUE(has(message_of([] {
                    parse_unicode_data("0042;B;Lu;0;L;;;;;N;;;;;\n0041;A;Lu;0;L;;;;;N;;;;;\n", "U.txt");
                  }),
                  "U.txt:2: code point 0041 is not after"));
  EXPECT_TRUE(has(message_of([] { parse_unicode_data("XYZ;A;Lu;0;L;;;;;N;;;;;\n", "U.txt"); }), "not a hexadecimal"));
}

TEST(UnicodeNames, BlocksFindTheirCodePoints) {
  const std::vector<UnicodeBlock> b = parse_unicode_blocks(kBlocks, "Blocks.txt");
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b[1].name, "Greek and Coptic");
  EXPECT_EQ(find_unicode_block(b, 0x41), 0);
  EXPECT_EQ(find_unicode_block(b, 0x3FF), 1);
  EXPECT_EQ(find_unicode_block(b, 0x100), -1);
  EXPECT_EQ(find_unicode_block(b, 0xFB00), -1);
  EXPECT_TRUE(has(message_of([] { parse_unicode_blocks("0000..007F Basic Latin\n", "B.txt"); }), "B.txt:1"));
  EXPECT_TRUE(has(message_of([] { parse_unicode_blocks("0000..007F; A\n0070..00FF; B\n", "B.txt"); }), "overlap"));
}

TEST(GlyphPairs, TextIsTheNameUnlessItOnlyRepeatsTheCodePoint) {
  const std::vector<UnicodeEntry> e = parse_unicode_data(kUnicodeData, "U");
  EXPECT_EQ(glyph_text(e[0], 0x0), "NULL");
  EXPECT_EQ(glyph_text(e[1], 0x1), "");
  EXPECT_EQ(glyph_text(e[2], 0x41), "LATIN CAPITAL LETTER A");
  EXPECT_EQ(glyph_text(e[7], 0x4E00), "");
  EXPECT_EQ(glyph_text(e[8], 0xF900), "");
  UnicodeEntry hyphen{0x2011, 0x2011, "NON-BREAKING HYPHEN", "Pd", "", false};
  EXPECT_EQ(glyph_text(hyphen, 0x2011), "NON-BREAKING HYPHEN");
}

TEST(GlyphPairs, JoinCountsEveryReasonToLeaveAGlyphOut) {
  std::vector<UnifontGlyph> glyphs;
  std::istringstream in(unifont_text());
  for (std::string line; std::getline(in, line);) glyphs.push_back(parse_unifont_line(line, "t"));
  std::reverse(glyphs.begin(), glyphs.end());  // the join orders by code point itself
  GlyphJoinCounts c;
  const std::vector<GlyphPair> p =
      join_glyph_pairs(glyphs, parse_unicode_data(kUnicodeData, "U"), parse_unicode_blocks(kBlocks, "B"), &c);
  ASSERT_EQ(p.size(), 5u);
  EXPECT_EQ(p[0].name, "NULL");
  EXPECT_EQ(p[4].name, "GREEK CAPITAL LETTER ALPHA");
  EXPECT_EQ(p[4].block, 1);
  EXPECT_EQ(p[3].category, "Ll");
  EXPECT_EQ(c.glyphs, 10);
  EXPECT_EQ(c.pairs, 5);
  EXPECT_EQ(c.control_without_name, 1);  // 0001
  EXPECT_EQ(c.no_block, 1);              // 0100
  EXPECT_EQ(c.unassigned, 1);            // 0378
  EXPECT_EQ(c.range_entry, 1);           // 4E00
  EXPECT_EQ(c.name_repeats_code_point, 1);  // F900
}

TEST(GlyphPairs, SplitIsDeterministicAndHoldsOutWholeBlocks) {
  const std::vector<UnicodeBlock> blocks = synthetic_blocks();
  std::vector<GlyphPair> a = synthetic_pairs(), b = synthetic_pairs();
  const std::vector<int> held = assign_glyph_splits(a, blocks, {});
  EXPECT_EQ(held, assign_glyph_splits(b, blocks, {}));
  ASSERT_FALSE(held.empty());
  std::map<GlyphSplit, int64_t> n;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].split, b[i].split);
    const bool in_held = std::count(held.begin(), held.end(), a[i].block) > 0;
    EXPECT_EQ(in_held, a[i].split == GlyphSplit::test_blocks) << a[i].glyph.code_point;
    ++n[a[i].split];
  }
  const double total = (double)a.size();
  EXPECT_LE(n[GlyphSplit::test_blocks], (int64_t)(0.1 * total + 0.5));
  EXPECT_GE(n[GlyphSplit::test_blocks], (int64_t)(0.07 * total));  // the greedy fill comes close
  const double chars = (double)n[GlyphSplit::test_chars] / (total - n[GlyphSplit::test_blocks]);
  EXPECT_GT(chars, 0.05);
  EXPECT_LT(chars, 0.16);
  std::vector<GlyphPair> c = synthetic_pairs();  // another seed, another choice
  GlyphSplitOptions other;
  other.seed = 7;
  EXPECT_NE(assign_glyph_splits(c, blocks, other), held);
}

TEST_F(GlyphFiles, PrepareWritesTheSplitsAndASecondRunRewritesNothing) {
  const GlyphsOptions o = write_inputs();
  const PreparedData first = prepare_glyphs(o);
  EXPECT_FALSE(first.up_to_date);
  EXPECT_EQ(first.summary["pairs"], 5);
  EXPECT_EQ(first.summary["splits"]["test_blocks"]["pairs"], 1);
  EXPECT_EQ(first.summary["test_blocks_names"], nlohmann::json({"Greek and Coptic"}));

  const io::SafeTensors train = io::SafeTensors::open(file("out/train.safetensors"));
  const Tensor images = train.get("images", DType::u8, {4, 16, 16});
  EXPECT_EQ(images.data<uint8_t>()[4 * 16 + 3], kGlyphInk);  // row 4 of the bitmap: 0x18
  EXPECT_EQ(images.data<uint8_t>()[4 * 16 + 2], 0);
  EXPECT_EQ(train.get("code_point", DType::i32, {4}).data<int32_t>()[1], 0x41);
  EXPECT_EQ(train.get("width", DType::i32, {4}).data<int32_t>()[0], 8);
  EXPECT_EQ(train.metadata().at("blocks"), R"(["Basic Latin","Greek and Coptic"])");
  EXPECT_EQ(io::SafeTensors::open(file("out/test_blocks.safetensors")).get("block", DType::i32, {1}).data<int32_t>()[0], 1);
  const std::string texts = read_file(file("out/train.jsonl"));
  EXPECT_EQ(std::count(texts.begin(), texts.end(), '\n'), 4);
  EXPECT_TRUE(has(texts, R"("name":"LATIN SMALL LETTER A")"));

  std::map<std::string, fs::file_time_type> times;
  for (const auto& f : fs::directory_iterator(file("out"))) times[f.path().string()] = f.last_write_time();
  const PreparedData second = prepare_glyphs(o);
  EXPECT_TRUE(second.up_to_date);
  EXPECT_EQ(second.summary, first.summary);
  for (const auto& f : fs::directory_iterator(file("out"))) EXPECT_EQ(times.at(f.path().string()), f.last_write_time());

  std::ofstream(file("Blocks.txt"), std::ios::app) << "0100..017F; Latin Extended-A\n";  // an input changed
  const PreparedData third = prepare_glyphs(o);
  EXPECT_FALSE(third.up_to_date);
  EXPECT_EQ(third.summary["pairs"], 6);
}

TEST_F(GlyphFiles, BadInputsAreOneLineErrorsNamingTheFile) {
  GlyphsOptions o = write_inputs();
  write(file("unifont.hex"), "0041:0000000018242442427E424242420000\n0042:XYZ\n");
  EXPECT_TRUE(has(message_of([&] { prepare_glyphs(o); }), "unifont.hex:2: bitmap has 3 hex digits"));
  EXPECT_FALSE(fs::exists(file("out/prepare.json")));
  o.unicode_data = file("nope.txt");
  EXPECT_TRUE(has(message_of([&] { prepare_glyphs(o); }), "nope.txt: no such file"));
}

TEST_F(GlyphFiles, CliPrepareIsIdempotentAndRefusesOptionsOfOtherDataSets) {
  const GlyphsOptions o = write_inputs();
  const std::string args = "data prepare --dataset glyphs --block-fraction 0.3 --char-fraction 0 --out " + o.out_dir +
                           " --unifont " + o.unifont_hex + " --unicode-data " + o.unicode_data + " --blocks " +
                           o.blocks + " 2>&1";
  const auto [rc1, out1] = gannet::testing::command_status(std::string(GANNET_BINARY) + " " + args);
  EXPECT_EQ(rc1, 0) << out1;
  EXPECT_TRUE(has(out1, "(written)")) << out1;
  EXPECT_TRUE(has(out1, "U+0391 GREEK CAPITAL LETTER ALPHA  [Greek and Coptic, Lu]")) << out1;
  const auto [rc2, out2] = gannet::testing::command_status(std::string(GANNET_BINARY) + " " + args);
  EXPECT_EQ(rc2, 0);
  EXPECT_TRUE(has(out2, "up to date")) << out2;
  const auto [rc3, out3] = gannet::testing::command_status(std::string(GANNET_BINARY) +
                                                            " data prepare --dataset glyphs --vocab 300 2>&1");
  EXPECT_NE(rc3, 0);
  EXPECT_TRUE(has(out3, "--vocab does not apply to --dataset glyphs (only to brown)")) << out3;
  const auto [rc4, out4] = gannet::testing::command_status(std::string(GANNET_BINARY) +
                                                            " data prepare --dataset fashion-mnist --seed 3 2>&1");
  EXPECT_NE(rc4, 0);
  EXPECT_TRUE(has(out4, "--seed does not apply to --dataset fashion-mnist")) << out4;
}

TEST(GlyphPairs, RealDebianFilesGivePlausiblePairs) {
  const GlyphsOptions o;
  for (const std::string& f : {o.unifont_hex, o.unicode_data, o.blocks})
    if (!fs::exists(f)) GTEST_SKIP() << f << " is absent (Debian packages unifont, unicode-data: scripts/setup.sh)";
  GlyphJoinCounts c;
  const std::vector<UnicodeBlock> blocks = read_unicode_blocks(o.blocks);
  std::vector<GlyphPair> p = join_glyph_pairs(read_unifont_hex(o.unifont_hex), read_unicode_data(o.unicode_data), blocks, &c);
  EXPECT_GT(c.glyphs, 50000);
  EXPECT_GT(c.pairs, 15000);
  EXPECT_GT(c.range_entry, 20000);  // CJK unified ideographs and Hangul syllables of the BMP
  assign_glyph_splits(p, blocks, o.split);
  std::set<int> train_blocks, held_blocks;
  int64_t held = 0;
  for (const GlyphPair& g : p) {
    (g.split == GlyphSplit::test_blocks ? held_blocks : train_blocks).insert(g.block);
    held += g.split == GlyphSplit::test_blocks;
  }
  EXPECT_GT(held, (int64_t)(0.08 * (double)p.size()));
  for (int b : held_blocks) EXPECT_EQ(train_blocks.count(b), 0u) << blocks[b].name;
}
