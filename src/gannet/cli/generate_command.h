// `gannet generate`: one prompt through the inference engine and scheduler, text streamed to
// stdout, prompt and generation speed on stderr.
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

void add_generate_command(CLI::App& app);

}  // namespace gannet::cli
