#include "gannet/data/text_tokenizer.h"

#include <filesystem>

#include "gannet/core/error.h"
#include "gannet/data/gpt2_bpe.h"
#include "gannet/data/tokenizer.h"

namespace gannet::data {

namespace fs = std::filesystem;

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
