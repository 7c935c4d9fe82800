#include "gannet/data/unicode_names.h"

#include <algorithm>
#include <sstream>

#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"

namespace gannet::data {

namespace {

std::vector<std::string> split_fields(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, sep)) out.push_back(field);
  if (!line.empty() && line.back() == sep) out.emplace_back();  // getline drops a trailing empty field
  return out;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

int32_t parse_hex_code_point(const std::string& s, const std::string& where) {
  GANNET_CHECK(!s.empty() && s.size() <= 6 && s.find_first_not_of("0123456789ABCDEFabcdef") == std::string::npos,
               where, ": '", s, "' is not a hexadecimal code point");
  const int32_t cp = (int32_t)std::stol(s, nullptr, 16);
  GANNET_CHECK(cp <= 0x10FFFF, where, ": code point ", s, " is beyond U+10FFFF");
  return cp;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// "<CJK Ideograph, First>" -> "CJK Ideograph" when the name is a range bound of that kind.
bool range_bound(const std::string& name, const char* kind, std::string* label) {
  const std::string tail = std::string(", ") + kind + ">";
  if (name.size() < 2 || name.front() != '<' || !ends_with(name, tail)) return false;
  *label = name.substr(1, name.size() - 1 - tail.size());
  return true;
}

}  // namespace

std::vector<UnicodeEntry> parse_unicode_data(const std::string& text, const std::string& where) {
  std::vector<UnicodeEntry> out;
  std::istringstream in(text);
  std::string line;
  bool open_range = false;
  for (int n = 1; std::getline(in, line); ++n) {
    if (trim(line).empty()) continue;
    const std::string at = str(where, ":", n);
    const std::vector<std::string> f = split_fields(line, ';');
    GANNET_CHECK(f.size() >= 15, at, ": ", f.size(), " fields, not 15");
    const int32_t cp = parse_hex_code_point(f[0], at);
    GANNET_CHECK(out.empty() || cp > out.back().last, at, ": code point ", f[0], " is not after the previous line's");
    std::string label;
    if (open_range) {
      GANNET_CHECK(range_bound(f[1], "Last", &label) && label == out.back().name, at, ": '", f[1],
                   "' does not close the range <", out.back().name, ", First>");
      out.back().last = cp;
      open_range = false;
      continue;
    }
    UnicodeEntry e;
    e.first = e.last = cp;
    e.category = f[2];
    e.old_name = f[10];
    if (range_bound(f[1], "First", &label)) {
      e.name = label;
      e.is_range = open_range = true;
    } else {
      GANNET_CHECK(!range_bound(f[1], "Last", &label), at, ": '", f[1], "' closes a range that was not opened");
      e.name = f[1];
    }
    out.push_back(std::move(e));
  }
  GANNET_CHECK(!open_range, where, ": the range <", out.empty() ? "" : out.back().name, ", First> is never closed");
  GANNET_CHECK(!out.empty(), where, ": no entries (not UnicodeData.txt?)");
  return out;
}

std::vector<UnicodeBlock> parse_unicode_blocks(const std::string& text, const std::string& where) {
  std::vector<UnicodeBlock> out;
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const std::string body = trim(line.substr(0, line.find('#')));
    if (body.empty()) continue;
    const std::string at = str(where, ":", n);
    const size_t semi = body.find(';'), dots = body.find("..");
    GANNET_CHECK(semi != std::string::npos && dots != std::string::npos && dots < semi, at, ": '", body,
                 "' is not 'XXXX..YYYY; Block Name'");
    UnicodeBlock b;
    b.first = parse_hex_code_point(trim(body.substr(0, dots)), at);
    b.last = parse_hex_code_point(trim(body.substr(dots + 2, semi - dots - 2)), at);
    b.name = trim(body.substr(semi + 1));
    GANNET_CHECK(b.first <= b.last && !b.name.empty(), at, ": '", body, "' is an empty range or has no name");
    out.push_back(std::move(b));
  }
  std::sort(out.begin(), out.end(), [](const UnicodeBlock& a, const UnicodeBlock& b) { return a.first < b.first; });
  for (size_t i = 1; i < out.size(); ++i)
    GANNET_CHECK(out[i].first > out[i - 1].last, where, ": blocks '", out[i - 1].name, "' and '", out[i].name,
                 "' overlap");
  GANNET_CHECK(!out.empty(), where, ": no blocks (not Blocks.txt?)");
  return out;
}

int find_unicode_block(const std::vector<UnicodeBlock>& blocks, int32_t cp) {
  auto it = std::upper_bound(blocks.begin(), blocks.end(), cp,
                             [](int32_t c, const UnicodeBlock& b) { return c < b.first; });
  if (it == blocks.begin()) return -1;
  --it;
  return cp <= it->last ? (int)(it - blocks.begin()) : -1;
}

std::vector<UnicodeEntry> read_unicode_data(const std::string& path) {
  return parse_unicode_data(read_file(path), path);
}

std::vector<UnicodeBlock> read_unicode_blocks(const std::string& path) {
  return parse_unicode_blocks(read_file(path), path);
}

}  // namespace gannet::data
