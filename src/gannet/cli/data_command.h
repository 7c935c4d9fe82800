// `gannet data ...` subcommands. `data prepare` (Brown corpus -> tokenizer + token files) and
// `data analyze` (per-sample difficulty index files for curriculum learning).
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

// Registers `data` with its subcommands on `app`. The callbacks run gannet::data functions, which
// throw gannet::Error on failure (main prints it as one line and exits non-zero).
void add_data_commands(CLI::App& app);

}  // namespace gannet::cli
