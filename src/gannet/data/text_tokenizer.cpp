#include "gannet/data/text_tokenizer.h"

#include <filesystem>

#include "gannet/core/error.h"
#include "gannet/data/gpt2_bpe.h"
#include "gannet/data/tokenizer.h"

namespace gannet::data {

namespace fs = std::filesystem;

void split_at_special_tokens(std::string_view text, const std::vector<SpecialToken>& specials,
                             const std::function<void(std::string_view)>& ordinary,
                             const std::function<void(int32_t)>& special) {
  size_t pos = 0;
  for (;;) {
    size_t hit = std::string_view::npos;
    const SpecialToken* found = nullptr;
    for (const SpecialToken& s : specials) {
      if (s.text.empty()) continue;
      const size_t at = text.find(s.text, pos);
      if (at < hit || (at == hit && at != std::string_view::npos && s.text.size() > found->text.size())) {
        hit = at;
        found = &s;
      }
    }
    const std::string_view piece = text.substr(pos, hit == std::string_view::npos ? std::string_view::npos : hit - pos);
    if (!piece.empty()) ordinary(piece);
    if (found == nullptr) return;
    special(found->id);
    pos = hit + found->text.size();
  }
}

std::unique_ptr<TextTokenizer> load_text_tokenizer(const std::string& path) {
  std::error_code ec;
  GANNET_CHECK(fs::exists(path, ec), "cannot load tokenizer ", path, ": no such file or directory");
  const fs::path p(path);
  if (fs::is_directory(p, ec) || p.filename() == "vocab.json") {
    const fs::path dir = fs::is_directory(p, ec) ? p : p.parent_path();
    const fs::path vocab = dir / "vocab.json", merges = dir / "merges.txt";
    GANNET_CHECK(fs::is_regular_file(vocab, ec) && fs::is_regular_file(merges, ec), "cannot load tokenizer ", path,
                 ": expected GPT-2's vocab.json and merges.txt in ", dir.string(), " (missing ",
                 fs::is_regular_file(vocab, ec) ? merges.filename().string() : vocab.filename().string(), ")");
    return std::make_unique<Gpt2Bpe>(Gpt2Bpe::load(vocab.string(), merges.string()));
  }
  if (p.extension() == ".model") return std::make_unique<Tokenizer>(Tokenizer::load(path));
  fail(str("cannot load tokenizer ", path,
           ": expected a SentencePiece .model file, or a directory (or its vocab.json) with GPT-2's vocab.json and "
           "merges.txt"));
}

}  // namespace gannet::data
