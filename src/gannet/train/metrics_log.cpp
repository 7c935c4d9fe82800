#include "gannet/train/metrics_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"

namespace gannet::train {

namespace {

// Whether one logged line belongs after a checkpoint at `step`: a later step, or the final
// validation (written after the last checkpoint, so a resumed run writes it again).
bool after_checkpoint(const nlohmann::json& j, int64_t step) {
  if (!j.is_object()) return false;
  auto s = j.find("step");
  if (s != j.end() && s->is_number_integer() && s->get<int64_t>() > step) return true;
  auto f = j.find("final");
  return f != j.end() && f->is_boolean() && f->get<bool>();
}

double number_or_zero(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

}  // namespace

LogCut cut_metrics_log(const std::string& path, int64_t step) {
  LogCut cut;
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) return cut;
  const std::string text = read_file(path);
  size_t keep = 0;  // the length of the lines kept
  bool cutting = false;
  for (size_t pos = 0; pos < text.size();) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      cut.partial_line = true;
      break;
    }
    if (!cutting) {
      const nlohmann::json j = nlohmann::json::parse(text.begin() + (std::ptrdiff_t)pos,
                                                     text.begin() + (std::ptrdiff_t)nl, nullptr, false);
      cutting = after_checkpoint(j, step);
      if (!cutting) {
        keep = nl + 1;
        auto s = j.is_object() ? j.find("step") : j.end();
        if (s != j.end() && s->is_number_integer() && s->get<int64_t>() == step && j.contains("elapsed_s"))
          cut.clock = {number_or_zero(j, "elapsed_s"), number_or_zero(j, "train_s")};
      }
    }
    if (cutting) ++cut.lines_removed;
    pos = nl + 1;
  }
  if (keep < text.size() && ::truncate(path.c_str(), (off_t)keep) != 0)
    fail(str("cannot cut ", path, " back to step ", step, ": ", std::strerror(errno)));
  return cut;
}

MetricsLog::MetricsLog(int fd, std::string path) : fd_(fd), path_(std::move(path)) {
  struct stat st;
  size_ = ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) ? (int64_t)st.st_size : 0;
}

MetricsLog::MetricsLog(MetricsLog&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)), size_(other.size_) {}

MetricsLog& MetricsLog::operator=(MetricsLog&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    size_ = other.size_;
  }
  return *this;
}

MetricsLog::~MetricsLog() {
  if (fd_ >= 0) ::close(fd_);
}

MetricsLog MetricsLog::open(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | flags, 0666);
  if (fd < 0) fail(str("cannot write ", path, ": ", std::strerror(errno)));
  return MetricsLog(fd, path);
}

MetricsLog MetricsLog::create(const std::string& path) { return open(path, O_TRUNC); }

MetricsLog MetricsLog::append(const std::string& path) { return open(path, 0); }

void MetricsLog::write(const nlohmann::json& line) {
  if (fd_ < 0) return;
  const std::string text = line.dump() + "\n";
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      (void)::ftruncate(fd_, (off_t)size_);  // no half line: cut what reached the file (fails on a device)
      fail(str("cannot write ", path_, ": ", std::strerror(err)));
    }
    p += n;
    left -= (size_t)n;
  }
  size_ += (int64_t)text.size();
}

}  // namespace gannet::train
