// Writes a safetensors file holding one tensor too large to hold in memory (the features of a
// generated graph: f32 [50M, 128] is 25.6 GB), block of rows after block of rows. The file has
// the layout save_safetensors writes, so SafeTensors::open maps it like any other.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "gannet/core/tensor.h"

namespace gannet::io {

// Writes the header at construction, then the rows as they are appended, into a temporary beside
// `path` (core/atomic_file.h's temporary_path); finish() renames it into place. A writer destroyed
// without finish(), or after any error (a failed write, too many rows, too few at finish), removes
// its temporary: `path` is either the whole file or left as it was.
class SafetensorsStreamWriter {
 public:
  // One tensor `name` of `dtype` and `shape` (at least one dimension: the rows).
  SafetensorsStreamWriter(const std::string& path, const std::string& name, DType dtype, const Shape& shape,
                          const std::map<std::string, std::string>& metadata = {});
  ~SafetensorsStreamWriter();
  SafetensorsStreamWriter(const SafetensorsStreamWriter&) = delete;
  SafetensorsStreamWriter& operator=(const SafetensorsStreamWriter&) = delete;

  // Appends the next rows: `rows` has the tensor's dtype and shape but for its leading dimension.
  void append(const Tensor& rows);
  // Appends `num_rows` rows from raw bytes laid out as the tensor's rows (num_rows * row_bytes()).
  void append(const void* data, int64_t num_rows);
  // Checks that every row was written, makes the file durable and renames it into place.
  void finish();

  int64_t rows_written() const { return rows_written_; }
  int64_t num_rows() const { return shape_[0]; }
  uint64_t row_bytes() const { return row_bytes_; }
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void abandon(const std::string& why);

  std::string path_, tmp_, name_;
  DType dtype_;
  Shape shape_;
  uint64_t row_bytes_ = 0;
  int64_t rows_written_ = 0;
  int fd_ = -1;  // -1 once finished or abandoned
};

}  // namespace gannet::io
