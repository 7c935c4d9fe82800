// A small hand-made GPT-2 vocabulary (the 256 byte tokens, a few merges, <|endoftext|>) in GPT-2's
// file formats: the tokenizer fuzzer's seed and the request fuzzer's tokenizer.
#pragma once
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace gannet::fuzz {

// GPT-2's byte alphabet: printable bytes stand for themselves, the others for U+0100 + n in byte
// order (space is U+0120 'Ġ').
inline std::string gpt2_symbols(const std::string& bytes) {
  auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; };
  std::string out;
  for (unsigned char b : bytes) {
    char32_t cp = b;
    if (!printable(b)) {
      int n = 0;
      for (int x = 0; x < b; ++x) n += !printable(x);
      cp = 256 + n;
    }
    if (cp < 0x80) {
      out += (char)cp;
    } else {
      out += (char)(0xC0 | (cp >> 6));
      out += (char)(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

struct SmallVocab {
  std::string vocab_json, merges_txt;
};

inline SmallVocab small_gpt2_vocab() {
  const std::vector<std::pair<std::string, std::string>> merges = {
      {" ", "w"}, {"o", "r"}, {"l", "d"}, {" w", "or"}, {" wor", "ld"}, {"H", "e"}, {"l", "l"}, {"He", "ll"},
      {"Hell", "o"}, {"'", "t"}, {"1", "2"}, {" ", " "}, {"\xC3", "\xA9"}, {"t", "h"}, {" ", "th"}, {" th", "e"}};
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[gpt2_symbols(std::string(1, (char)b))] = b;
  SmallVocab v{"", "#version: 0.2\n"};
  for (size_t r = 0; r < merges.size(); ++r) {
    vocab[gpt2_symbols(merges[r].first + merges[r].second)] = 256 + (int)r;
    v.merges_txt += gpt2_symbols(merges[r].first) + " " + gpt2_symbols(merges[r].second) + "\n";
  }
  vocab["<|endoftext|>"] = 256 + (int)merges.size();
  v.vocab_json = vocab.dump();
  return v;
}

}  // namespace gannet::fuzz
