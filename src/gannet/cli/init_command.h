// `gannet init --preset gpt2-124m --out m.safetensors`: a random-weight model of a known shape,
// for speed work where the weights do not matter.
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

void add_init_command(CLI::App& app);

}  // namespace gannet::cli
