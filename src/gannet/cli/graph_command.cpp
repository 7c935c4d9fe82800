#include "gannet/cli/graph_command.h"

#include <CLI/CLI.hpp>

#include "gannet/cli/graph_compress_command.h"
#include "gannet/cli/graph_generate_command.h"
#include "gannet/cli/graph_prepare_command.h"
#include "gannet/cli/graph_train_command.h"

namespace gannet::cli {

void add_graph_commands(CLI::App& app) {
  CLI::App* graph = app.add_subcommand("graph", "Node classification on graphs: GraphSAGE with BiFeat feature compression");
  graph->require_subcommand(1);
  add_graph_compress_command(*graph);
  add_graph_prepare_command(*graph);
  add_graph_generate_command(*graph);
  add_graph_train_commands(*graph);
}

}  // namespace gannet::cli
