// GPT-2's byte-level BPE tokenizer, for imported GPT-2 models: vocab.json (token -> id) and
// merges.txt (one merge "left right" per line, rank = line order). Text is split into words by
// GPT-2's pre-tokenizer pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (matched by hand over UTF-8 code points; classes from data/unicode_class.h; bytes that are not
// valid UTF-8 count as "other"), each word's bytes become the 256 byte tokens (GPT-2's
// bytes_to_unicode alphabet: printable bytes stand for themselves, the others for U+0100 + n),
// and merges apply lowest rank first. "<|endoftext|>" in the text is its own id only when the
// caller allows special tokens (AllowSpecial::all); by default it is ordinary text. Any byte string
// encodes, and decode(encode(s)) == s.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gannet/data/text_tokenizer.h"

namespace gannet::data {

class Gpt2Bpe : public TextTokenizer {
 public:
  // Throws gannet::Error naming the file: missing or unreadable files, bad JSON, ids that are not
  // 0..N-1 each once, a byte token missing from the vocabulary, a merges line that is not two
  // tokens or names (or makes) a token the vocabulary lacks.
  static Gpt2Bpe load(const std::string& vocab_json_path, const std::string& merges_txt_path);

  Gpt2Bpe(Gpt2Bpe&&) noexcept;
  Gpt2Bpe& operator=(Gpt2Bpe&&) noexcept;
  ~Gpt2Bpe() override;

  using TextTokenizer::encode;
  // Thread-safe (words seen before come from a cache shared by all callers).
  std::vector<int32_t> encode(const std::string& text, AllowSpecial allow) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int vocab_size() const override { return (int)tokens_.size(); }
  int eos_id() const override { return eos_id_; }

  // The vocabulary entry of `id` as written in vocab.json ("Ġworld"); throws when out of range.
  const std::string& token(int32_t id) const;
  // The id of a vocabulary entry, or -1.
  int32_t token_id(const std::string& token) const;

  // GPT-2's pre-tokenizer alone: the words of `text` (no special-token handling), for tests.
  static std::vector<std::string> split_words(const std::string& text);

 private:
  struct WordCache;
  Gpt2Bpe();
  void encode_ordinary(std::string_view text, std::vector<int32_t>& out) const;
  void encode_word(const char* p, size_t n, std::vector<int32_t>& out) const;
  void bpe(const char* p, size_t n, std::vector<int32_t>& out) const;

  std::vector<std::string> tokens_;                 // id -> vocab.json entry
  std::vector<std::string> token_bytes_;            // id -> the bytes it decodes to
  std::unordered_map<std::string, int32_t> ids_;    // vocab.json entry -> id
  std::array<int32_t, 256> byte_ids_{};             // byte -> its single-byte token
  struct Merge {
    int32_t rank, merged;
  };
  std::unordered_map<uint64_t, Merge> merges_;      // (left << 32 | right) -> rank and result
  int32_t eos_id_ = -1;
  std::unique_ptr<WordCache> cache_;
};

}  // namespace gannet::data
