// `gannet train --config cfg.json [--resume]`.
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

void add_train_command(CLI::App& app);

}  // namespace gannet::cli
