#include "gannet/cli/plot_command.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "gannet/cli/number_options.h"
#include "gannet/core/error.h"
#include "gannet/train/loss_plot.h"

namespace gannet::cli {

namespace {
struct PlotArgs {
  std::vector<std::string> runs, labels;
  std::string out = "loss.svg";
  double tolerance = 0.01;
  double target = 0;
};

void run(const PlotArgs& a) {
  namespace fs = std::filesystem;
  GANNET_CHECK(a.labels.empty() || a.labels.size() == a.runs.size(), "plot: ", a.labels.size(), " labels for ",
               a.runs.size(), " runs");
  std::vector<train::RunLog> logs;
  for (size_t i = 0; i < a.runs.size(); ++i) {
    fs::path p(a.runs[i]);
    if (fs::is_directory(p)) p /= "metrics.jsonl";
    std::string label = a.labels.empty() ? fs::path(a.runs[i]).lexically_normal().filename().string() : a.labels[i];
    if (label.empty()) label = fs::path(a.runs[i]).lexically_normal().parent_path().filename().string();
    logs.push_back(train::read_run_log(p.string(), label));
  }
  const double target = a.target > 0 ? a.target : logs[0].final_val_loss * (1 + a.tolerance);
  train::write_loss_plot(logs, target, a.out);
  std::printf("%s", train::compare_runs(logs, target).c_str());
  std::printf("plot: %s\n", a.out.c_str());
}
}  // namespace

void add_plot_command(CLI::App& app) {
  auto args = std::make_shared<PlotArgs>();
  CLI::App* cmd = app.add_subcommand(
      "plot", "Plot validation and training loss against tokens, layer-tokens and training seconds for runs "
              "(their metrics.jsonl or directories), and print the compute each needs to reach the first run's "
              "final validation loss");
  cmd->add_option("runs", args->runs, "metrics.jsonl files or run directories; the first is the baseline")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--label,-l", args->labels,
                  "a label per run, in the runs' order (comma-separated or repeated; default: the directory name)")
      ->delimiter(',');
  cmd->add_option("--out,-o", args->out, "SVG file to write")->capture_default_str();
  cmd->add_option("--tolerance", args->tolerance,
                  "target = baseline's final validation loss x (1 + tolerance)")
      ->capture_default_str()
      ->check(number_in<double>(NumberRange::closed(0, 1)));
  cmd->add_option("--target", args->target, "explicit target validation loss (overrides --tolerance; 0 = none)")
      ->check(number_in<double>(NumberRange::at_least(0)));
  cmd->callback([args]() { run(*args); });
}

}  // namespace gannet::cli
