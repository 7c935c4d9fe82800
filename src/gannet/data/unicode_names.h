// The Unicode Character Database files Debian's `unicode-data` ships in /usr/share/unicode/:
// UnicodeData.txt (one code point a line, fields separated by ';': code;name;general category;...;
// field 10 the Unicode 1.0 name) and Blocks.txt ("0000..007F; Basic Latin").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gannet::data {

// One line of UnicodeData.txt, or one range: the "<CJK Ideograph, First>" / "<..., Last>" pair
// of lines becomes one entry with is_range set, first..last, and the range's label as its name
// ("CJK Ideograph"); UnicodeData.txt gives no per-character name for those code points.
struct UnicodeEntry {
  int32_t first = 0, last = 0;  // equal unless is_range
  std::string name;             // "LATIN SMALL LETTER E", "<control>", or the range label
  std::string category;         // general category: "Ll", "Cc", ...
  std::string old_name;         // field 10, the Unicode 1.0 name ("NULL" for U+0000); often empty
  bool is_range = false;
};

struct UnicodeBlock {
  int32_t first = 0, last = 0;
  std::string name;
};

// Parses UnicodeData.txt's text; `where` names the file in errors. Throws a one-line
// gannet::Error for a line with fewer than 15 fields, a bad code point, code points out of order,
// or a "First" line without its "Last".
std::vector<UnicodeEntry> parse_unicode_data(const std::string& text, const std::string& where);

// Parses Blocks.txt's text (comments after '#', blank lines skipped); blocks come out in order of
// their first code point. Throws for a malformed line or overlapping blocks.
std::vector<UnicodeBlock> parse_unicode_blocks(const std::string& text, const std::string& where);

// The index in `blocks` (sorted, disjoint) of the block holding `cp`, or -1 for none.
int find_unicode_block(const std::vector<UnicodeBlock>& blocks, int32_t cp);

// Reads and parses the files (errors name the file).
std::vector<UnicodeEntry> read_unicode_data(const std::string& path);
std::vector<UnicodeBlock> read_unicode_blocks(const std::string& path);

}  // namespace gannet::data
