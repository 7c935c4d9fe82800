// The tokenizer interface the inference engine, generate and serve use: gannet's own SentencePiece
// models (data/tokenizer.h) and GPT-2's byte-level BPE for imported models (data/gpt2_bpe.h).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gannet::data {

class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;
  virtual std::vector<int32_t> encode(const std::string& text) const = 0;
  // Throws gannet::Error on an id outside [0, vocab_size()). The bytes may end inside a UTF-8
  // character when the ids do (byte-level tokens); callers that stream text hold such tails back.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int vocab_size() const = 0;
  // End-of-text id (GPT-2: <|endoftext|> 50256), or -1 when the vocabulary has none.
  virtual int eos_id() const = 0;
};

// Loads a tokenizer from `path`: a SentencePiece .model file, or a directory (or the path of its
// vocab.json) holding GPT-2's vocab.json and merges.txt. Throws gannet::Error naming the path.
std::unique_ptr<TextTokenizer> load_text_tokenizer(const std::string& path);

}  // namespace gannet::data
