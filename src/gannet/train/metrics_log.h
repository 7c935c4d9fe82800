// A training run's metrics log (metrics.jsonl): one JSON object per line, in step order. Each line
// is written whole by one write; if the write fails (a full disk), the bytes of that line that did
// reach the file are cut off again and a gannet::Error names the log, so the log never ends in half
// a line. On --resume the log is first cut back to the checkpoint's step, so that the steps a killed
// run logged after its last checkpoint are not logged twice.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace gannet::train {

// The clock of a resumed run: the last elapsed_s and train_s logged for the checkpoint's step.
struct LoggedClock {
  double elapsed_s = 0, train_s = 0;
};

// What resume_metrics_log did to the log.
struct LogCut {
  LoggedClock clock;
  int64_t lines_removed = 0;   // whole lines after the checkpoint's step (and a final line)
  bool partial_line = false;   // a trailing line without its newline was cut off
};

// Cuts the log at `path` back to the lines of steps <= `step` (the checkpoint's): everything from
// the first line whose "step" is greater, or that is the final validation ("final": true, written
// after the last checkpoint), and a trailing partial line. A missing log is left missing.
LogCut cut_metrics_log(const std::string& path, int64_t step);

class MetricsLog {
 public:
  MetricsLog() = default;  // closed: write() does nothing (the ranks other than the lead)
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  MetricsLog(MetricsLog&& other) noexcept;
  MetricsLog& operator=(MetricsLog&& other) noexcept;
  ~MetricsLog();

  // A new run's log: created empty (truncated if it exists).
  static MetricsLog create(const std::string& path);
  // Appends to the log at `path` (created if missing); cut it back first (cut_metrics_log).
  static MetricsLog append(const std::string& path);

  // Writes `line` as one line. Throws gannet::Error ("cannot write <path>: <reason>") on failure,
  // after cutting the file back to its length before this line.
  void write(const nlohmann::json& line);
  bool is_open() const { return fd_ >= 0; }

 private:
  MetricsLog(int fd, std::string path);
  static MetricsLog open(const std::string& path, int flags);
  int fd_ = -1;
  std::string path_;
  int64_t size_ = 0;  // the file's length: the end of its last whole line
};

}  // namespace gannet::train
