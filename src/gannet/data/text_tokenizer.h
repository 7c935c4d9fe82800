// The tokenizer interface the inference engine, generate and serve use: gannet's own SentencePiece
// models (data/tokenizer.h) and GPT-2's byte-level BPE for imported models (data/gpt2_bpe.h).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gannet::data {

// Whether text that spells a special token ("<|endoftext|>") encodes to the token's id, as
// tiktoken's allowed_special does: `none` (the default, tiktoken's encode_ordinary) encodes it as
// ordinary text, so that text from a request or a file cannot inject an end of text; `all` turns
// every special token the text spells into its id.
enum class AllowSpecial : bool { none, all };

class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;
  std::vector<int32_t> encode(const std::string& text) const { return encode(text, AllowSpecial::none); }
  virtual std::vector<int32_t> encode(const std::string& text, AllowSpecial allow) const = 0;
  // Throws gannet::Error on an id outside [0, vocab_size()). The bytes may end inside a UTF-8
  // character when the ids do (byte-level tokens); callers that stream text hold such tails back.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int vocab_size() const = 0;
  // End-of-text id (GPT-2: <|endoftext|> 50256), or -1 when the vocabulary has none.
  virtual int eos_id() const = 0;
};

// A special token and the text that spells it ("<|endoftext|>", 50256).
struct SpecialToken {
  std::string text;
  int32_t id;
};

// Cuts `text` at the special tokens it spells (leftmost first; the longest of those starting at
// the same place): calls ordinary(piece) for each non-empty stretch between them and special(id)
// for each, in order. The tokenizers' AllowSpecial::all path.
void split_at_special_tokens(std::string_view text, const std::vector<SpecialToken>& specials,
                             const std::function<void(std::string_view)>& ordinary,
                             const std::function<void(int32_t)>& special);

// Loads a tokenizer from `path`: a SentencePiece .model file, or a directory (or the path of its
// vocab.json) holding GPT-2's vocab.json and merges.txt. Throws gannet::Error naming the path.
std::unique_ptr<TextTokenizer> load_text_tokenizer(const std::string& path);

}  // namespace gannet::data
