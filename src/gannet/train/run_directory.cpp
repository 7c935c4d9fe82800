#include "gannet/train/run_directory.h"

#include <cstdio>
#include <filesystem>

#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"
#include "gannet/train/trainer.h"

namespace gannet::train {

namespace fs = std::filesystem;

std::string metrics_log_path(const TrainConfig& config) {
  return (fs::path(config.out_dir) / "metrics.jsonl").string();
}

std::vector<std::string> earlier_run_files(const TrainConfig& config) {
  std::vector<std::string> found;
  std::error_code ec;
  const auto log_size = fs::file_size(metrics_log_path(config), ec);
  if (!ec && log_size > 0) found.push_back("metrics.jsonl");
  if (fs::exists(checkpoint_path(config), ec)) found.push_back("checkpoint.safetensors");
  if (fs::exists(fs::path(sharded_checkpoint_dir(config)) / "manifest.json", ec))
    found.push_back("checkpoint/manifest.json");
  return found;
}

void prepare_run_directory(const TrainConfig& config, bool resume) {
  if (!resume) {
    const std::vector<std::string> earlier = earlier_run_files(config);
    std::string list;
    for (const std::string& f : earlier) list += (list.empty() ? "" : ", ") + f;
    GANNET_CHECK(earlier.empty(), config.out_dir, " already holds a run (", list,
                 "): pass --resume to continue it, or remove or rename ", config.out_dir, " to start a new one");
  }
  std::string removed;
  for (const std::string& dir : {config.out_dir, sharded_checkpoint_dir(config)})
    for (const std::string& name : remove_stale_temporaries(dir))
      removed += (removed.empty() ? "" : ", ") + (fs::path(dir) / name).string();
  if (!removed.empty())
    std::fprintf(stderr, "gannet train: removed the temporary files of a killed run: %s\n", removed.c_str());
}

MetricsLog open_metrics_log(const TrainConfig& config, bool resume, int64_t step, LoggedClock* clock) {
  const std::string path = metrics_log_path(config);
  std::error_code ec;
  fs::create_directories(config.out_dir, ec);
  GANNET_CHECK(!ec, "cannot create ", config.out_dir, ": ", ec.message());
  if (!resume) return MetricsLog::create(path);
  const LogCut cut = cut_metrics_log(path, step);
  if (cut.lines_removed || cut.partial_line) {
    std::string what = cut.lines_removed ? str(cut.lines_removed, " later line", cut.lines_removed == 1 ? "" : "s") : "";
    if (cut.partial_line) what += what.empty() ? "a partial line" : " and a partial line";
    std::fprintf(stderr, "gannet train: %s cut back to step %ld, the checkpoint's (%s removed)\n", path.c_str(),
                 (long)step, what.c_str());
  }
  if (clock) *clock = cut.clock;
  return MetricsLog::append(path);
}

}  // namespace gannet::train
