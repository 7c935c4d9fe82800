// Reading docs.tsv, the document table `gannet data prepare` writes (prepare.h): one row per
// document, in id order, saying where its tokens are.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gannet::data {

struct DocRow {
  std::string id;      // e.g. "ca01"
  char genre = 0;      // the genre letter, as brown.h
  bool val = false;    // split: "val" (true) or "train"
  int64_t offset = 0;  // first token in its split's token file
  int64_t count = 0;   // tokens, the closing eos included (>= 1)
};

// Parses and checks the table: the exact header "id\tgenre\tsplit\ttoken_offset\ttoken_count",
// five tab-separated fields a row, a one-letter genre, split "train" or "val", non-negative
// integers with count >= 1, ids unique. Any problem is a one-line gannet::Error naming the file
// and line.
std::vector<DocRow> read_docs_table(const std::string& path);

}  // namespace gannet::data
