#include "gannet/infer/weight_stream.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "gannet/core/error.h"
#include "gannet/core/huge_pages.h"

namespace gannet::infer {

namespace {
constexpr int64_t kReadPiece = int64_t(8) << 20;  // bytes per pread: a stop request waits at most one

// Reads [offset, offset + bytes) of fd into dst; returns an error message or "".
std::string read_exactly(int fd, const std::string& name, int64_t offset, int64_t bytes, char* dst) {
  for (int64_t done = 0; done < bytes;) {
    const int64_t want = std::min(kReadPiece, bytes - done);
    const ssize_t got = pread(fd, dst + done, (size_t)want, (off_t)(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      return str(name, ": read of bytes [", offset + done, ", ", offset + done + want, ") failed: ", std::strerror(errno));
    }
    if (got == 0)
      return str(name, ": the file ends at byte ", offset + done, " but the weights need bytes up to ", offset + bytes,
                 " (truncated?)");
    done += got;
  }
  return "";
}
}  // namespace

WeightStream::WeightStream(int fd, std::string name, std::vector<FileExtent> units, std::shared_ptr<void> memory,
                           int64_t slots, int64_t slot_bytes)
    : fd_(fd),
      name_(std::move(name)),
      units_(std::move(units)),
      memory_(std::move(memory)),
      slots_(slots),
      slot_bytes_(slot_bytes),
      slot_unit_(slots, -1),
      slot_generation_(slots, 0) {
  GANNET_CHECK(!units_.empty() && slots_ >= 1, "weight stream: no units or no slots");
  GANNET_CHECK(slot_bytes_ % kDirectIoAlign == 0 && (uintptr_t)memory_.get() % kDirectIoAlign == 0,
               "weight stream: slots not aligned for direct I/O");
  for (const FileExtent& e : units_)
    GANNET_CHECK(e.offset % kDirectIoAlign == 0 && e.bytes % kDirectIoAlign == 0 && e.bytes <= slot_bytes_,
                 "weight stream: a unit is not aligned for direct I/O or larger than a slot");
  reader_ = std::thread([this] { read_loop(); });
}

WeightStream::~WeightStream() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  reader_.join();
  close(fd_);
}

std::string WeightStream::read_unit(int64_t u, char* dst) {
  return read_exactly(fd_, name_, units_[u].offset, units_[u].bytes, dst);
}

void WeightStream::read_loop() {
  const int64_t U = (int64_t)units_.size();
  for (int64_t k = 0;; ++k) {
    const int64_t u = k % U, s = k % slots_;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || k < released_ + slots_; });
      if (stop_) return;
      if (slot_unit_[s] == u) {  // still there from the last round (as many slots as units)
        loaded_ = k + 1;
        cv_.notify_all();
        continue;
      }
      slot_unit_[s] = -1;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const std::string err = read_unit(u, slot_data(s));
    std::lock_guard<std::mutex> lock(mu_);
    read_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!err.empty()) {
      error_ = err;
      cv_.notify_all();
      return;
    }
    slot_unit_[s] = u;
    ++slot_generation_[s];
    bytes_read_ += units_[u].bytes;
    loaded_ = k + 1;
    cv_.notify_all();
  }
}

int64_t WeightStream::acquire(int64_t unit) {
  std::unique_lock<std::mutex> lock(mu_);
  const int64_t U = (int64_t)units_.size();
  GANNET_CHECK(acquired_ % U == unit, "weight stream: unit ", unit, " acquired out of order (next is ", acquired_ % U,
               ")");
  GANNET_CHECK(acquired_ < released_ + slots_, "weight stream: every slot is held");
  if (loaded_ <= acquired_ && error_.empty()) {
    const auto t0 = std::chrono::steady_clock::now();
    cv_.wait(lock, [&] { return loaded_ > acquired_ || !error_.empty(); });
    wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (loaded_ <= acquired_) fail(error_);
  return acquired_++ % slots_;
}

void WeightStream::release(int64_t unit) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t U = (int64_t)units_.size();
    GANNET_CHECK(released_ < acquired_ && released_ % U == unit, "weight stream: unit ", unit,
                 " released out of order");
    ++released_;
  }
  cv_.notify_all();
}

void WeightStream::read_now(int64_t slot, int64_t slot_offset, int64_t file_offset, int64_t bytes) {
  GANNET_CHECK(slot >= 0 && slot < slots_ && slot_offset >= 0 && bytes >= 0 && slot_offset + bytes <= slot_bytes_ &&
                   slot_offset % kDirectIoAlign == 0 && file_offset % kDirectIoAlign == 0 && bytes % kDirectIoAlign == 0,
               "weight stream: a read outside its slot or not aligned for direct I/O");
  const auto t0 = std::chrono::steady_clock::now();
  const std::string err = read_exactly(fd_, name_, file_offset, bytes, slot_data(slot) + slot_offset);
  GANNET_CHECK(err.empty(), err);
  std::lock_guard<std::mutex> lock(mu_);
  read_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  bytes_read_ += bytes;
}

int64_t WeightStream::generation(int64_t s) const {
  std::lock_guard<std::mutex> lock(mu_);
  return slot_generation_[s];
}

int64_t WeightStream::bytes_read() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_read_;
}

double WeightStream::read_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return read_seconds_;
}

double WeightStream::wait_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return wait_seconds_;
}

double WeightStream::measure_read_gbps(int64_t bytes) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !error_.empty() || loaded_ >= released_ + slots_; });
    if (!error_.empty()) fail(error_);
  }
  int64_t file_bytes = 0;
  for (const FileExtent& e : units_) file_bytes = std::max(file_bytes, e.offset + e.bytes);
  std::shared_ptr<void> buffer = allocate_huge_pages((size_t)kReadPiece, "the disk read probe");
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t done = 0; done < bytes;) {
    const int64_t at = done % file_bytes, n = std::min({kReadPiece, bytes - done, file_bytes - at});
    const std::string err = read_exactly(fd_, name_, at, (n + kDirectIoAlign - 1) / kDirectIoAlign * kDirectIoAlign,
                                         static_cast<char*>(buffer.get()));
    GANNET_CHECK(err.empty(), err);
    done += n;
  }
  return bytes / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 1e9;
}

}  // namespace gannet::infer
