// Word-level tokenizer for the glyph pairs' texts (Unicode names, data/glyph_pairs.h): a name is
// words split on spaces and hyphens, the hyphen kept as a token of its own ("HYPHEN-MINUS" ->
// HYPHEN - MINUS). Word-level, not character-level, because the names are drawn from a small closed
// vocabulary of meaningful words (LATIN, SMALL, LETTER, CIRCLED, ...) and are short: a name is about
// 5 words but 30 characters, so text tokens stay few beside the image's patches. The price: a word
// only held-out blocks use (a script's name) is [UNK]. Saved as a text file, one token a line after
// a format line, the line order giving the ids.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "gannet/core/tensor.h"

namespace gannet::data {

class GlyphTextTokenizer {
 public:
  // The special tokens' ids, the first five of every vocabulary.
  static constexpr int32_t kPad = 0, kUnk = 1, kCls = 2, kSep = 3, kMask = 4;

  // The vocabulary of `texts`: the specials, then every word seen at least min_count times, the
  // most frequent first (ties in byte order), so the ids do not depend on the texts' order.
  static GlyphTextTokenizer build(const std::vector<std::string>& texts, int64_t min_count = 1);
  // Throws gannet::Error naming the file and line on a missing format line, misplaced specials,
  // a repeated or empty token.
  static GlyphTextTokenizer load(const std::string& path);
  void save(const std::string& path) const;

  // Words and hyphens in order: "HYPHEN-MINUS SIGN" -> HYPHEN, -, MINUS, SIGN.
  static std::vector<std::string> split(const std::string& text);
  // The text's ids, without [CLS] or [SEP]; an unknown word is kUnk.
  std::vector<int32_t> encode(const std::string& text) const;
  // Words joined by spaces, a hyphen joined to its neighbours without; specials other than [PAD],
  // [CLS] and [SEP] (which are skipped) appear by name. Throws on an id outside the vocabulary.
  std::string decode(const std::vector<int32_t>& ids) const;
  // A batch as the model takes it: tokens i32 [B, length] = [CLS] words [SEP] [PAD]..., and mask
  // u8 [B, length] (1 = real, [CLS] and [SEP] included). A longer text is cut, keeping its [SEP].
  void encode_batch(const std::vector<std::string>& texts, int64_t length, Tensor& tokens, Tensor& mask) const;

  int64_t vocab_size() const { return (int64_t)tokens_.size(); }
  const std::string& token(int32_t id) const;
  // The id of a token, or kUnk.
  int32_t id(const std::string& token) const;

 private:
  explicit GlyphTextTokenizer(std::vector<std::string> tokens);
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
};

}  // namespace gannet::data
