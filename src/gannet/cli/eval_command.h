// `gannet eval` (loss and perplexity on a token file) and `gannet generate` (sampling from a prompt).
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

void add_eval_command(CLI::App& app);
void add_generate_command(CLI::App& app);

}  // namespace gannet::cli
