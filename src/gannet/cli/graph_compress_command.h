// `gannet graph compress`: BiFeat compression of a data set's node features (gnn/bifeat_compress.h)
// into one file that `graph train` and `graph eval` read with --features / "features".
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

// Registers `compress` on the `graph` app.
void add_graph_compress_command(CLI::App& graph);

}  // namespace gannet::cli
