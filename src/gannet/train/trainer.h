// Training: run_training builds the task a config names (the GPT language model; see
// train/train_task.h) and runs the shared loop on it: batches, forward/backward, gradient
// accumulation, clipping, AdamW, warmup + cosine (or layer-token) schedule, periodic validation, a
// JSONL metrics log, atomic checkpoints (whole or sharded), exact resume, and a checkpoint on
// Ctrl-C. Every log line carries tokens, layer_tokens, train_s (training only) and elapsed_s
// (wall-clock), and the task's own figures.
#pragma once
#include <string>

#include "gannet/train/train_config.h"
#include "gannet/train/train_task.h"

namespace gannet::train {

struct TrainOptions {
  bool resume = false;      // continue from the newest checkpoint in out_dir (find_checkpoint)
  bool progress = true;     // draw the progress bar
  int64_t stop_after = -1;  // stop (with a checkpoint) after this many steps; -1: run to the end
};

struct TrainResult {
  int64_t steps_done = 0;
  int64_t steps_run = 0;        // steps this invocation ran (0: resumed a finished run)
  double final_train_loss = 0;  // the last step's loss (0 when steps_run is 0)
  double val_loss = 0, val_perplexity = 0;  // the GPT's final validation (0 when not run)
  Figures validation;                       // the task's final validation figures (none when not run)
  double tokens_per_second = 0;
  bool interrupted = false;  // stopped by SIGINT/SIGTERM; a checkpoint was written
  std::string checkpoint;  // the whole file, or a sharded checkpoint's manifest.json
  int rank = 0;  // this process's rank (0 without mpirun); only rank 0 reports
};

TrainResult run_training(const TrainConfig& config, const TrainOptions& options);
// The loop itself, on a task built from `config` (train/training_loop.cpp).
TrainResult run_task(TrainTask& task, const TrainConfig& config, const TrainOptions& options);

// Path of the whole-file checkpoint a run writes: <out_dir>/checkpoint.safetensors.
std::string checkpoint_path(const TrainConfig& config);
// Directory of the sharded checkpoint a run writes: <out_dir>/checkpoint (its manifest.json names the shards).
std::string sharded_checkpoint_dir(const TrainConfig& config);
// The checkpoint --resume reads: the whole file or the sharded checkpoint's manifest, whichever
// was written last if both exist; empty if neither does.
std::string find_checkpoint(const TrainConfig& config);

}  // namespace gannet::train
