// Glyph image-text pairs for VL-MoE (issue 21): each GNU Unifont bitmap (unifont.h) joined with
// its character's Unicode name, general category and block (unicode_names.h), filtered, split by
// code point, and written as DIR/{train,test_blocks,test_chars}.{safetensors,jsonl} (format:
// docs/vlmoe.md).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gannet/data/prepare_stamp.h"
#include "gannet/data/unicode_names.h"
#include "gannet/data/unifont.h"

namespace gannet::data {

// train; test_blocks: every character of a few whole blocks (scripts never seen in training);
// test_chars: random characters of the other blocks (blocks seen, characters not).
enum class GlyphSplit : uint8_t { train, test_blocks, test_chars };
constexpr GlyphSplit kGlyphSplits[] = {GlyphSplit::train, GlyphSplit::test_blocks, GlyphSplit::test_chars};
const char* glyph_split_name(GlyphSplit s);

struct GlyphPair {
  UnifontGlyph glyph;
  std::string name;      // the text: "LATIN SMALL LETTER E WITH CIRCUMFLEX"
  std::string category;  // general category: "Ll"
  int block = -1;        // index into the blocks the pairs were joined with
  GlyphSplit split = GlyphSplit::train;
};

// What the join kept and why it left glyphs out (every glyph is counted once).
struct GlyphJoinCounts {
  int64_t glyphs = 0, pairs = 0;
  int64_t unassigned = 0;               // no line in UnicodeData.txt (unassigned, noncharacter)
  int64_t range_entry = 0;              // inside a <..., First>/<..., Last> range: CJK, Hangul, private use
  int64_t name_repeats_code_point = 0;  // "CJK COMPATIBILITY IDEOGRAPH-F900": the name says only the code point
  int64_t control_without_name = 0;     // <control> with no Unicode 1.0 name in field 10
  int64_t no_block = 0;                 // named, but in no block of Blocks.txt
};

// The text a character is paired with, or "" to leave it out: its name; for a <control>, its
// Unicode 1.0 name (field 10: "NULL", "LINE FEED (LF)"); nothing for a range entry or a name that
// ends in "-" and the code point's own hex digits.
std::string glyph_text(const UnicodeEntry& e, int32_t cp);

// Pairs in code point order (glyphs may come in any order). Every pair's split is train.
std::vector<GlyphPair> join_glyph_pairs(const std::vector<UnifontGlyph>& glyphs, const std::vector<UnicodeEntry>& entries,
                                        const std::vector<UnicodeBlock>& blocks, GlyphJoinCounts* counts);

struct GlyphSplitOptions {
  uint64_t seed = 21;
  double block_fraction = 0.1;  // of the pairs, in whole blocks, for test_blocks
  double char_fraction = 0.1;   // of the remaining characters, for test_chars
};

// Sets each pair's split, deterministically from the seed, the block names and the code points:
// blocks, ordered by a hash of (seed, block name), are held out whole while they fit within
// block_fraction of the pairs (a block that would overshoot is skipped, the next tried); then a
// character of another block goes to test_chars when a hash of (seed, code point) falls in the
// lowest char_fraction of its range. Returns the indices of the held-out blocks, ascending.
std::vector<int> assign_glyph_splits(std::vector<GlyphPair>& pairs, const std::vector<UnicodeBlock>& blocks,
                                     const GlyphSplitOptions& opt);

struct GlyphsOptions {
  std::string out_dir = "data/glyphs";
  std::string unifont_hex = "/usr/share/unifont/unifont.hex";
  std::string unicode_data = "/usr/share/unicode/UnicodeData.txt";
  std::string blocks = "/usr/share/unicode/Blocks.txt";
  GlyphSplitOptions split;
};

// Idempotent as prepare_brown: when DIR/prepare.json matches the options and the input files'
// fingerprints, and every output has its recorded size, does nothing (and says so on stderr).
// Otherwise reads, joins, splits and writes everything, each file atomically, the stamp last.
// A missing or corrupt input is a one-line gannet::Error naming it, before anything is written.
PreparedData prepare_glyphs(const GlyphsOptions& opt);

}  // namespace gannet::data
