// `gannet graph generate`: writes a GENERATED data set shaped like ogbn-papers100M
// (gnn/generated_graph.h) for speed and memory figures at scale, and prints its summary.
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

void add_graph_generate_command(CLI::App& graph);

}  // namespace gannet::cli
