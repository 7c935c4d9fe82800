#include "gannet/io/safetensors_stream_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"
#include "gannet/io/safetensors.h"

namespace gannet::io {

namespace {

std::string parent_of(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

}  // namespace

SafetensorsStreamWriter::SafetensorsStreamWriter(const std::string& path, const std::string& name, DType dtype,
                                                 const Shape& shape, const std::map<std::string, std::string>& metadata)
    : path_(path), tmp_(temporary_path(path)), name_(name), dtype_(dtype), shape_(shape) {
  GANNET_CHECK(!shape.empty(), "cannot write ", path, ": tensor '", name, "' needs at least one dimension (its rows)");
  GANNET_CHECK(name != "__metadata__", "cannot write ", path, ": '__metadata__' is not a valid tensor name");
  GANNET_CHECK(dtype != DType::i4, "cannot write ", path, ": streaming packed int4 to safetensors is not supported");
  for (int64_t d : shape) GANNET_CHECK(d >= 0, "cannot write ", path, ": negative dimension in ", shape_str(shape));
  row_bytes_ = dtype_bytes(dtype, shape_numel(Shape(shape.begin() + 1, shape.end())));
  const std::string header = safetensors_header(path, {{name, dtype, shape, row_bytes_ * (uint64_t)shape[0]}}, metadata);
  remove_stale_temporaries(parent_of(path), std::filesystem::path(path).filename().string());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd_ < 0) fail(str("cannot write ", path, ": ", std::strerror(errno)));
  if (int err = write_all(fd_, header.data(), header.size())) abandon(std::strerror(err));
}

SafetensorsStreamWriter::~SafetensorsStreamWriter() {
  if (fd_ < 0) return;
  ::close(fd_);
  ::unlink(tmp_.c_str());
}

void SafetensorsStreamWriter::abandon(const std::string& why) {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
    fd_ = -1;
  }
  fail(str("cannot write ", path_, ": ", why));
}

void SafetensorsStreamWriter::append(const Tensor& rows) {
  GANNET_CHECK(fd_ >= 0, "cannot write ", path_, ": the writer is already finished or abandoned");
  Shape expected = shape_;
  expected[0] = rows.defined() && rows.ndim() > 0 ? rows.dim(0) : 0;
  if (!rows.defined() || rows.dtype() != dtype_ || rows.shape() != expected)
    abandon(str("tensor '", name_, "': rows of ", dtype_name(dtype_), shape_str(expected), " expected, got ",
                rows.defined() ? rows.describe() : "an undefined tensor"));
  append(rows.raw(), rows.dim(0));
}

void SafetensorsStreamWriter::append(const void* data, int64_t num_rows) {
  GANNET_CHECK(fd_ >= 0, "cannot write ", path_, ": the writer is already finished or abandoned");
  if (num_rows < 0 || num_rows > shape_[0] - rows_written_)
    abandon(str("tensor '", name_, "': ", num_rows, " more rows after ", rows_written_, " exceed its ", shape_[0]));
  if (int err = write_all(fd_, static_cast<const char*>(data), row_bytes_ * (uint64_t)num_rows))
    abandon(std::strerror(err));
  rows_written_ += num_rows;
}

void SafetensorsStreamWriter::finish() {
  GANNET_CHECK(fd_ >= 0, "cannot write ", path_, ": the writer is already finished or abandoned");
  if (rows_written_ != shape_[0])
    abandon(str("tensor '", name_, "': ", rows_written_, " of its ", shape_[0], " rows were written"));
  if (::fsync(fd_) != 0) abandon(str("fsync: ", std::strerror(errno)));
  const int rc = ::close(fd_);
  fd_ = -1;
  const int err = rc != 0 ? errno : ::rename(tmp_.c_str(), path_.c_str()) != 0 ? errno : 0;
  if (err != 0) {
    ::unlink(tmp_.c_str());
    fail(str("cannot write ", path_, ": ", rc != 0 ? "close: " : "rename: ", std::strerror(err)));
  }
  // Make the rename itself durable; failure here does not undo a completed write.
  const int dfd = ::open(parent_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace gannet::io
