#include "gannet/cli/tensor_parallel_option.h"

#include <CLI/CLI.hpp>
#include <cstdio>

#include "gannet/core/error.h"
#include "gannet/dist/world.h"

namespace gannet::cli {

void add_tensor_parallel_option(CLI::App* cmd, TensorParallelArgs& args) {
  cmd->add_option("--tensor-parallel", args.ranks,
                  "processes the model is split over (Megatron layout: heads, MLP columns, vocabulary); run under "
                  "`mpirun -np N` with the same N; float models, or quantized with int8 or float inputs")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_flag("--expert-parallel", args.expert_parallel,
                "with --tensor-parallel: place an MoE model's experts whole, E/N on each process (default: split "
                "every expert's hidden units over the processes, as the MLP's)");
}

dist::Communicator* tensor_parallel_group(const TensorParallelArgs& args) {
  const int ranks = args.ranks;
  GANNET_CHECK(!args.expert_parallel || ranks > 1, "--expert-parallel needs --tensor-parallel N with N > 1");
  if (ranks <= 1) {
    GANNET_CHECK(!dist::launched_by_mpi() || dist::world().size() == 1, "launched by mpirun with ",
                 dist::world().size(), " processes: give --tensor-parallel ", dist::world().size(),
                 " (or run one process)");
    return nullptr;
  }
  GANNET_CHECK(dist::launched_by_mpi(), "--tensor-parallel ", ranks, " needs `mpirun -np ", ranks, "`");
  dist::Communicator& w = dist::world();
  GANNET_CHECK(w.size() == ranks, "--tensor-parallel ", ranks, " but mpirun started ", w.size(), " processes");
  if (w.rank() != 0) GANNET_CHECK(std::freopen("/dev/null", "w", stdout) != nullptr, "cannot silence rank ", w.rank());
  return &w;
}

}  // namespace gannet::cli
