#include "gannet/cli/model_options.h"

#include <CLI/CLI.hpp>
#include <filesystem>

namespace gannet::cli {

void add_model_options(CLI::App* cmd, std::string& model, std::string& tokenizer) {
  cmd->add_option("--model,-m", model,
                  "model: gannet .safetensors model or checkpoint, a sharded checkpoint (its manifest.json or "
                  "directory), or a Hugging Face GPT-2 directory")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--tokenizer", tokenizer,
                  "SentencePiece .model, or a directory with GPT-2's vocab.json and merges.txt (default: the model "
                  "directory for Hugging Face GPT-2, else data/brown/tokenizer.model)");
}

std::string default_tokenizer_for(const std::string& model) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(model, ec) && fs::is_regular_file(fs::path(model) / "vocab.json", ec)) return model;
  return "data/brown/tokenizer.model";
}

std::unique_ptr<data::TextTokenizer> load_tokenizer_for(const std::string& model, const std::string& tokenizer) {
  return data::load_text_tokenizer(tokenizer.empty() ? default_tokenizer_for(model) : tokenizer);
}

}  // namespace gannet::cli
