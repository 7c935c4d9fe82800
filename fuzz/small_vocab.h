// A small hand-made GPT-2 vocabulary (the 256 byte tokens, a few merges, <|endoftext|>) in GPT-2's
// file formats: the tokenizer fuzzer's seed and the request fuzzer's tokenizer.
#pragma once
#include "../tests/gpt2_vocab_files.h"

namespace gannet::fuzz {

inline gannet::testing::Gpt2VocabFiles small_gpt2_vocab() {
  return gannet::testing::gpt2_vocab_files(
      {{" ", "w"}, {"o", "r"}, {"l", "d"}, {" w", "or"}, {" wor", "ld"}, {"H", "e"}, {"l", "l"}, {"He", "ll"},
       {"Hell", "o"}, {"'", "t"}, {"1", "2"}, {" ", " "}, {"\xC3", "\xA9"}, {"t", "h"}, {" ", "th"}, {" th", "e"}});
}

}  // namespace gannet::fuzz
