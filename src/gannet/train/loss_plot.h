// Comparison of training runs from their metrics.jsonl logs: validation (and smoothed training)
// loss against tokens, layer-tokens and training seconds, as one SVG with three panels, and the
// compute each run needed to reach the first run's final validation loss.
#pragma once
#include <string>
#include <vector>

namespace gannet::train {

struct RunLog {
  std::string label;
  struct Point {
    double step, tokens, layer_tokens, seconds, loss;
  };
  std::vector<Point> train, val;  // seconds: train_s (training only; elapsed_s for older logs)
  double final_val_loss = 0;      // last validation loss (the run's "final" line if present)
};

// Reads a metrics.jsonl; lines without tokens/layer_tokens (older logs) count tokens only.
RunLog read_run_log(const std::string& path, const std::string& label);

struct Reached {
  bool reached = false;
  double tokens = 0, layer_tokens = 0, seconds = 0, step = 0;  // interpolated between validations
};
// Where `run` first reaches validation loss <= target (linear between validation points).
Reached first_reaching(const RunLog& run, double target);

// The SVG (written atomically). `target` <= 0: no target line.
void write_loss_plot(const std::vector<RunLog>& runs, double target, const std::string& path);
// A text table: each run's final validation loss and the compute it needed to reach `target`,
// with ratios to the first run.
std::string compare_runs(const std::vector<RunLog>& runs, double target);

}  // namespace gannet::train
