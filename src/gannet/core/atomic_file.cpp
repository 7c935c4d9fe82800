#include "gannet/core/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <streambuf>
#include <vector>

#include "gannet/core/error.h"
#include "gannet/core/regular_file.h"

namespace gannet {
namespace {

std::string errno_str(int err) { return std::strerror(err); }

// An output streambuf over a POSIX file descriptor, remembering the first write error.
class FdBuf : public std::streambuf {
 public:
  explicit FdBuf(int fd) : fd_(fd), buf_(1 << 16) { setp(buf_.data(), buf_.data() + buf_.size()); }
  int error() const { return err_; }
  bool flush_buffer() {
    if (err_) return false;
    size_t n = (size_t)(pptr() - pbase());
    if (n) err_ = write_all(fd_, pbase(), n);
    setp(buf_.data(), buf_.data() + buf_.size());
    return err_ == 0;
  }

 protected:
  int_type overflow(int_type c) override {
    if (!flush_buffer()) return traits_type::eof();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (err_) return 0;
    if ((size_t)n <= (size_t)(epptr() - pptr())) {
      std::memcpy(pptr(), s, (size_t)n);
      pbump((int)n);
      return n;
    }
    if (!flush_buffer()) return 0;
    if ((size_t)n < buf_.size()) {
      std::memcpy(pptr(), s, (size_t)n);
      pbump((int)n);
      return n;
    }
    err_ = write_all(fd_, s, (size_t)n);  // large block: write it directly
    return err_ ? 0 : n;
  }
  int sync() override { return flush_buffer() ? 0 : -1; }

 private:
  int fd_;
  std::vector<char> buf_;
  int err_ = 0;
};

std::string dir_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

constexpr const char* kTmpMarker = ".tmp.";

}  // namespace

int write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

std::string temporary_path(const std::string& path) { return path + kTmpMarker + std::to_string((long)::getpid()); }

long pid_after(const std::string& name, const std::string& marker) {
  const size_t at = name.rfind(marker);
  if (at == std::string::npos) return -1;
  const size_t begin = at + marker.size();
  const size_t digits = name.size() - begin;
  if (digits == 0 || digits > 9) return -1;  // pid_max is at most 2^22
  long pid = 0;
  for (size_t i = begin; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    pid = pid * 10 + (name[i] - '0');
  }
  return pid;
}

bool process_exists(long pid) {
  if (pid <= 0 || pid != (long)(pid_t)pid) return false;
  return ::kill((pid_t)pid, 0) == 0 || errno == EPERM;  // EPERM: it exists, owned by another user
}

std::vector<std::string> remove_stale_temporaries(const std::string& dir, const std::string& target_name) {
  namespace fs = std::filesystem;
  std::vector<std::string> removed;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const size_t at = name.rfind(kTmpMarker);
    if (at == std::string::npos || at == 0) continue;
    if (!target_name.empty() && name.compare(0, at, target_name) != 0) continue;
    const long pid = pid_after(name, kTmpMarker);
    std::error_code fe;
    if (pid <= 0 || process_exists(pid) || !it->is_regular_file(fe) || it->is_symlink(fe)) continue;
    if (fs::remove(it->path(), fe)) removed.push_back(name);
  }
  return removed;
}

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& writer) {
  GANNET_CHECK(!path.empty(), "write_file_atomic: empty path");
  remove_stale_temporaries(dir_of(path), base_of(path));
  const std::string tmp = temporary_path(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) fail(str("cannot write ", path, ": ", errno_str(errno)));

  auto abandon = [&](const std::string& why) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    fail(str("cannot write ", path, ": ", why));
  };

  std::string why;
  try {
    FdBuf buf(fd);
    std::ostream os(&buf);
    writer(os);
    os.flush();
    if (!buf.flush_buffer() || buf.error()) {
      why = errno_str(buf.error());
    } else if (!os) {
      why = "stream error";
    }
  } catch (const std::exception& e) {
    why = e.what();
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (!why.empty()) abandon(why);
  if (::fsync(fd) != 0) abandon(str("fsync: ", errno_str(errno)));
  int rc = ::close(fd);
  fd = -1;
  if (rc != 0) abandon(str("close: ", errno_str(errno)));
  if (::rename(tmp.c_str(), path.c_str()) != 0) abandon(str("rename: ", errno_str(errno)));
  // Make the rename itself durable; failure here does not undo a completed write.
  int dfd = ::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  write_file_atomic(path, [&](std::ostream& os) { os.write(contents.data(), (std::streamsize)contents.size()); });
}

std::string read_file(const std::string& path) {
  struct stat st;
  int fd = open_regular_file(path, st);
  std::string out;
  out.reserve((size_t)st.st_size);
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      fail(str("cannot read ", path, ": ", errno_str(err)));
    }
    if (n == 0) break;
    out.append(buf, (size_t)n);
  }
  ::close(fd);
  return out;
}

}  // namespace gannet
