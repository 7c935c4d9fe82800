// GPT-2 vocabulary files (vocab.json, merges.txt) for a hand-made merge list: the 256 byte tokens
// (id b = byte b), then one token per merge in rank order (id 256 + r), then <|endoftext|>. Shared
// by the BPE tests and the fuzzers; written from this header's own statement of GPT-2's byte
// alphabet, not from the library's.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace gannet::testing {

// GPT-2's byte alphabet: printable bytes stand for themselves, the others for U+0100 + n in byte
// order (space is U+0120 'Ġ', newline U+010A 'Ċ'); as UTF-8.
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

struct Gpt2VocabFiles {
  std::string vocab_json, merges_txt;
  int eot = 0;  // the id of <|endoftext|>: 256 + the number of merges
};

// `merges` in rank order, as raw bytes.
inline Gpt2VocabFiles gpt2_vocab_files(const std::vector<std::pair<std::string, std::string>>& merges) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[gpt2_symbols(std::string(1, (char)b))] = b;
  Gpt2VocabFiles f{"", "#version: 0.2\n", 256 + (int)merges.size()};
  for (size_t r = 0; r < merges.size(); ++r) {
    vocab[gpt2_symbols(merges[r].first + merges[r].second)] = 256 + (int)r;
    f.merges_txt += gpt2_symbols(merges[r].first) + " " + gpt2_symbols(merges[r].second) + "\n";
  }
  vocab["<|endoftext|>"] = f.eot;
  f.vocab_json = vocab.dump();
  return f;
}

}  // namespace gannet::testing
