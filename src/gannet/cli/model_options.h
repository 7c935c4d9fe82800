// The --model and --tokenizer options of the commands that run the inference engine (generate,
// serve), and the tokenizer they pick when none is given.
#pragma once
#include <memory>
#include <string>

#include "gannet/data/text_tokenizer.h"

namespace CLI {
class App;
}

namespace gannet::cli {

void add_model_options(CLI::App* cmd, std::string& model, std::string& tokenizer);

// The tokenizer to use with `model` when none is given: a Hugging Face GPT-2 directory's own
// vocab.json/merges.txt, else gannet's Brown SentencePiece model.
std::string default_tokenizer_for(const std::string& model);

// `tokenizer`, or the default for `model` when it is empty.
std::unique_ptr<data::TextTokenizer> load_tokenizer_for(const std::string& model, const std::string& tokenizer);

}  // namespace gannet::cli
