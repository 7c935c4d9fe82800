// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON header
//   {"__metadata__": {"k": "v"}, "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]}}
// and then the tensor data, offsets relative to the start of the data. Files are memory-mapped
// and tensors handed out without copying.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gannet/core/tensor.h"

namespace gannet {
class MappedFile;
}

namespace gannet::io {

// dtype names in safetensors: F32, BF16, F16, I8, U8, I32, I64. Packed i4 has no safetensors
// name (it is stored as U8 with a metadata entry); safetensors_dtype_name(i4) throws.
const char* safetensors_dtype_name(DType t);
// Throws for names gannet cannot represent.
DType dtype_from_safetensors_name(const std::string& name);

class SafeTensors {
 public:
  // Maps and validates the file; every problem is a gannet::Error naming the file.
  static SafeTensors open(const std::string& path);

  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  // Tensor names in the order of their data in the file (the order they were saved in).
  std::vector<std::string> names() const { return order_; }
  // The tensor, sharing the file's memory (the mapping stays alive while the tensor does). If its
  // bytes are not aligned to its element size in the file, an aligned copy is returned instead.
  Tensor get(const std::string& name) const;
  // As get(name), but throws (naming file, tensor, expected and actual) on another dtype or shape.
  Tensor get(const std::string& name, DType expected_dtype, const Shape& expected_shape) const;
  const std::string& path() const { return path_; }

 private:
  struct Entry {
    std::string st_dtype;    // as written in the file
    bool supported = false;  // whether gannet has this dtype
    DType dtype = DType::u8;
    Shape shape;
    uint64_t begin = 0, end = 0;  // relative to the data start
  };
  std::string path_;
  std::shared_ptr<MappedFile> file_;
  size_t data_start_ = 0;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, Entry> entries_;
  std::vector<std::string> order_;
};

// One tensor's entry in a header: its data follow the previous entry's.
struct TensorEntry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t nbytes;
};
// The bytes before the data: the 8-byte little-endian length, then the JSON header padded with
// spaces so that the data starts 8-byte aligned. Throws naming `path` for what JSON cannot hold.
std::string safetensors_header(const std::string& path, const std::vector<TensorEntry>& entries,
                               const std::map<std::string, std::string>& metadata);

// Writes a safetensors file atomically (temporary + rename), tensors' data in the given order,
// the header padded with spaces so that the data starts 8-byte aligned. Names must be unique and
// not "__metadata__". Saving an i4 tensor throws ("not supported yet").
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace gannet::io
