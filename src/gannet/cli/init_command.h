// `gannet init --preset gpt2-124m --out m.safetensors [--dtype bf16]`: a random-weight model of a
// known shape (GPT-2 124M to 1.5B, a 7B-class "gpt-7b"), written tensor by tensor in small memory,
// for speed work where the weights do not matter.
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

void add_init_command(CLI::App& app);

}  // namespace gannet::cli
