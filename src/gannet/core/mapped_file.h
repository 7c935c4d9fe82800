// A whole file memory-mapped for reading. Held by shared_ptr so that tensors wrapping its bytes
// (Tensor::wrap with the MappedFile as owner) keep the mapping alive after the reader is gone.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace gannet {

class MappedFile {
 public:
  // Maps the whole file. Throws gannet::Error ("cannot open X: No such file or directory") if it
  // cannot be opened or mapped, or is not a regular file (a FIFO is refused without blocking). An
  // empty file gives size() == 0 and data() == nullptr.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // The file's bytes. The file itself is never modified: the mapping is private (copy-on-write),
  // so a write through a wrapped tensor changes only this process's copy of that page.
  const uint8_t* data() const { return data_; }
  uint8_t* mutable_data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace gannet
