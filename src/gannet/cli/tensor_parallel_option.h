// The --tensor-parallel option of the commands that run the inference engine on several processes
// (generate, bench, serve): `mpirun -np N gannet generate ... --tensor-parallel N`. In generate and
// bench every rank runs the same command on the same inputs (the engine's collectives keep them in
// step; sampling sees the same logits everywhere); in serve rank 0 alone speaks HTTP and the others
// follow its engine calls (EngineOptions::lead_followers). Rank 0 alone writes to stdout.
#pragma once

namespace CLI {
class App;
}
namespace gannet::dist {
class Communicator;
}

namespace gannet::cli {

struct TensorParallelArgs {
  int ranks = 1;                 // --tensor-parallel
  bool expert_parallel = false;  // --expert-parallel: EngineOptions::expert_parallel
};

// --tensor-parallel N and --expert-parallel.
void add_tensor_parallel_option(CLI::App* cmd, TensorParallelArgs& args);

// The group for EngineOptions::tensor_parallel: null for 1; else MPI's world, which must have
// exactly `ranks` processes. Launched by mpirun with several processes, --tensor-parallel must say
// so (the ranks would otherwise each run the whole job). --expert-parallel needs a group. Silences
// stdout on ranks other than 0.
dist::Communicator* tensor_parallel_group(const TensorParallelArgs& args);

}  // namespace gannet::cli
