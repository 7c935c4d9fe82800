// `gannet graph prepare --source debian`: the Debian package graph as a node-classification data
// set (gnn/graph_dataset.h's directory), from `apt-cache dumpavail` or a saved copy of its output.
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

// Registers `prepare` on the `graph` app.
void add_graph_prepare_command(CLI::App& graph);

}  // namespace gannet::cli
