// A training run's directory (checkpoint.dir) before the run: a new run never starts over an
// earlier one, the temporaries a killed run left are removed, and the metrics log is opened: empty
// for a new run, cut back to the checkpoint's step for --resume. Under mpirun only the lead rank
// (world rank 0) calls these: it alone writes the log and cleans the directory.
#pragma once
#include <string>
#include <vector>

#include "gannet/train/metrics_log.h"
#include "gannet/train/train_config.h"

namespace gannet::train {

// <out_dir>/metrics.jsonl.
std::string metrics_log_path(const TrainConfig& config);

// The files of an earlier run in out_dir, relative to it: a non-empty metrics.jsonl,
// checkpoint.safetensors, checkpoint/manifest.json. Empty if there are none.
std::vector<std::string> earlier_run_files(const TrainConfig& config);

// Before a run: without `resume`, throws a gannet::Error if out_dir holds an earlier run (pass
// --resume, or remove or rename the directory); then removes the stale temporaries
// ("*.tmp.<pid>" of processes that no longer exist) in out_dir and its checkpoint directory,
// naming them on stderr. Writes nothing else.
void prepare_run_directory(const TrainConfig& config, bool resume);

// The run's log, once the run has started: a new run's is created empty (out_dir created if
// needed); a resumed run's is cut back to `step` (cut_metrics_log, said on stderr if anything was
// cut) and appended to, and `clock` receives the time logged at `step`.
MetricsLog open_metrics_log(const TrainConfig& config, bool resume, int64_t step, LoggedClock* clock);

}  // namespace gannet::train
