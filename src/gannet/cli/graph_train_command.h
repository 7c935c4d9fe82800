// `gannet graph train` (GraphSAGE or the MLP baseline from a JSON config of task "graph") and
// `gannet graph eval` (a checkpoint's accuracy on a split of its data set).
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

void add_graph_train_commands(CLI::App& graph);

}  // namespace gannet::cli
