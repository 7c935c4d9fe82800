// The gannet command line: a thin shell over the library. Errors become one line on stderr and a
// non-zero exit.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "gannet/cli/bench_command.h"
#include "gannet/cli/compress_command.h"
#include "gannet/cli/data_command.h"
#include "gannet/cli/eval_command.h"
#include "gannet/cli/generate_command.h"
#include "gannet/cli/graph_command.h"
#include "gannet/cli/init_command.h"
#include "gannet/cli/moe_stats_command.h"
#include "gannet/cli/vlmoe_embed_command.h"
#include "gannet/cli/vlmoe_search_command.h"
#include "gannet/cli/plot_command.h"
#include "gannet/cli/input_stats_command.h"
#include "gannet/cli/quantize_command.h"
#include "gannet/cli/serve_command.h"
#include "gannet/cli/train_command.h"
#include "gannet/core/error.h"
#include "gannet/core/escape.h"
#include "gannet/dist/world.h"
#include "gannet/kernels/blas_core.h"

int main(int argc, char** argv) {
  gannet::kernels::ensure_blas_core(argv);
  CLI::App app{"gannet: train, compress and serve transformer models on CPU"};
  app.require_subcommand(1);
  gannet::cli::add_data_commands(app);
  gannet::cli::add_train_command(app);
  gannet::cli::add_eval_command(app);
  gannet::cli::add_generate_command(app);
  gannet::cli::add_serve_command(app);
  gannet::cli::add_init_command(app);
  gannet::cli::add_bench_command(app);
  gannet::cli::add_quantize_command(app);
  gannet::cli::add_input_stats_command(app);
  gannet::cli::add_compress_command(app);
  gannet::cli::add_plot_command(app);
  gannet::cli::add_moe_stats_command(app);
  gannet::cli::add_embed_command(app);
  gannet::cli::add_search_command(app);
  gannet::cli::add_graph_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    // One line and exit 1, as every other error: "gannet: error: --seq-len: must be >= 0, got -5".
    std::fprintf(stderr, "gannet: error: %s (see --help)\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    // Escaped: a message may quote bytes of a file (invalid UTF-8, control bytes); it stays one
    // printable line whatever they were.
    std::fprintf(stderr, "gannet: error: %s\n", gannet::escape_bytes(e.what()).c_str());
    std::fflush(stderr);
    gannet::dist::abort_world(1);  // under mpirun: the other ranks end too, instead of waiting in a collective
    return 1;
  }
  return 0;
}
