// A one-line progress bar on stderr (redrawn in place on a terminal; a plain line every few
// seconds otherwise, so logs stay readable).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace gannet::train {

class ProgressBar {
 public:
  ProgressBar(int64_t total, int64_t start = 0);
  // Shows `done` of total, with `info` (e.g. "loss 3.21 | 4100 tok/s") and an ETA.
  void update(int64_t done, const std::string& info);
  // Prints a message on its own line without garbling the bar.
  void message(const std::string& text);
  void finish();

 private:
  int64_t total_, start_;
  bool tty_;
  std::chrono::steady_clock::time_point t0_, last_print_;
  std::string last_line_;
};

std::string format_duration(double seconds);

}  // namespace gannet::train
