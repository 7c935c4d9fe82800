// `gannet generate`: one prompt through the inference engine and scheduler, text streamed to
// stdout, prompt and generation speed on stderr.
#pragma once
#include <string>

namespace CLI {
class App;
}

namespace gannet::cli {

void add_generate_command(CLI::App& app);

// The tokenizer to use with `model` when none is given: a Hugging Face GPT-2 directory's own
// vocab.json/merges.txt, else gannet's Brown SentencePiece model.
std::string default_tokenizer_for(const std::string& model);

}  // namespace gannet::cli
