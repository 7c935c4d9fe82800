// `gannet plot`: loss against tokens, layer-tokens and training seconds for several runs (SVG),
// and the compute each needed to reach the first run's final validation loss.
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

void add_plot_command(CLI::App& app);

}  // namespace gannet::cli
