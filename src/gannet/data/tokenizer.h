// Subword tokenizer: a SentencePiece BPE model with byte fallback (any text encodes, nothing maps
// to <unk>) and identity normalization, so decode(encode(s)) == s. Ids: 0 <unk>, 1 <s> (bos),
// 2 </s> (eos), 3..258 the bytes <0x00>..<0xFF>, then the merged pieces.
//
// Newlines: SentencePiece trains on one line at a time, so encode() encodes each line on its own
// (each line starts with a word-initial piece, as in training) and joins lines with the byte piece
// <0x0A>; decode() splits on it again.
//
// Special tokens: text that spells "<s>" or "</s>" encodes as ordinary text (SentencePiece never
// reads control pieces from text) unless the caller passes AllowSpecial::all, which turns them
// into bos and eos.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gannet/data/text_tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace gannet::data {

class Tokenizer : public TextTokenizer {
 public:
  // Loads `model_path` (a SentencePiece .model file). Throws gannet::Error naming the file.
  static Tokenizer load(const std::string& model_path);

  // Trains a BPE model on `text_file` (one sentence per line) and writes
  // `model_prefix + ".model"` (atomically) and `model_prefix + ".vocab"` (piece, score per line).
  // Deterministic: the same file and vocab_size give a byte-identical model.
  static void train_bpe(const std::string& text_file, const std::string& model_prefix, int vocab_size);

  using TextTokenizer::encode;
  std::vector<int32_t> encode(const std::string& text, AllowSpecial allow) const override;
  // Throws gannet::Error on an id outside [0, vocab_size()).
  std::string decode(const std::vector<int32_t>& ids) const override;
  // The piece of one id, e.g. "▁the" or "<0x0A>".
  std::string piece(int32_t id) const;

  int vocab_size() const override;
  int eos_id() const override;
  int bos_id() const;
  int unk_id() const;
  // The <0x0A> piece, or -1 for a model without byte fallback (then newlines are encoded as
  // SentencePiece's normalizer treats them).
  int newline_id() const { return newline_id_; }

 private:
  Tokenizer() = default;
  void encode_ordinary(std::string_view text, std::vector<int32_t>& out) const;
  std::shared_ptr<const sentencepiece::SentencePieceProcessor> sp_;
  int newline_id_ = -1;
};

}  // namespace gannet::data
