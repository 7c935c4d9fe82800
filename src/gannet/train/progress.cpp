#include "gannet/train/progress.h"

#include <unistd.h>

#include <cstdio>

namespace gannet::train {

std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "--";
  int64_t t = (int64_t)(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", (long)(t / 3600), (long)(t / 60 % 60));
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", (long)(t / 60), (long)(t % 60));
  else std::snprintf(buf, sizeof buf, "%lds", (long)t);
  return buf;
}

ProgressBar::ProgressBar(int64_t total, int64_t start)
    : total_(total), start_(start), tty_(isatty(STDERR_FILENO)), t0_(std::chrono::steady_clock::now()),
      last_print_(t0_) {}

void ProgressBar::update(int64_t done, const std::string& info) {
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - t0_).count();
  double rate = done > start_ ? elapsed / (double)(done - start_) : 0;
  double eta = rate * (double)(total_ - done);
  const int width = 24;
  int filled = total_ > 0 ? (int)(width * done / total_) : width;
  std::string bar(filled, '=');
  if (filled < width) bar += '>' + std::string(width - filled - 1, ' ');
  char head[64];
  std::snprintf(head, sizeof head, "step %ld/%ld [", (long)done, (long)total_);
  last_line_ = head + bar + "] " + info + " | ETA " + format_duration(eta);
  if (tty_) {
    std::fprintf(stderr, "\r%s\033[K", last_line_.c_str());
    std::fflush(stderr);
  } else if (std::chrono::duration<double>(now - last_print_).count() >= 10.0 || done == total_) {
    std::fprintf(stderr, "%s\n", last_line_.c_str());
    last_print_ = now;
  }
}

void ProgressBar::message(const std::string& text) {
  if (tty_) std::fprintf(stderr, "\r\033[K%s\n%s", text.c_str(), last_line_.c_str());
  else std::fprintf(stderr, "%s\n", text.c_str());
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (tty_) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

}  // namespace gannet::train
