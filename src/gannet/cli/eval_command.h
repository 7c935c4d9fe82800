// `gannet eval`: loss and perplexity on a token file.
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

void add_eval_command(CLI::App& app);

}  // namespace gannet::cli
