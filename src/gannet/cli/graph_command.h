// `gannet graph ...`: node classification on graphs (gnn/): prepare a data set, train and
// evaluate GraphSAGE, compress node features (BiFeat).
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

// Registers `graph` with its subcommands on `app`; each subcommand lives in its own file
// (cli/graph_*_command.cpp) and registers itself on the `graph` app it is given.
void add_graph_commands(CLI::App& app);

}  // namespace gannet::cli
