// Tensor: a typed, shaped view onto shared, 64-byte aligned storage (or onto memory someone else
// owns, such as a memory-mapped file). Always contiguous; views select ranges of the leading dim.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "gannet/core/dtype.h"
#include "gannet/core/error.h"

namespace gannet {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

// The bytes behind one or more tensors.
class Storage {
 public:
  explicit Storage(size_t bytes);                               // owned, aligned, uninitialized
  Storage(void* data, size_t bytes, std::shared_ptr<void> owner);  // borrowed; owner keeps it alive
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  bool owned_ = false;
  std::shared_ptr<void> owner_;
};

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(const Shape& shape, DType dtype = DType::f32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32);
  static Tensor full(const Shape& shape, float value);
  // Wraps memory owned elsewhere (no copy).
  static Tensor wrap(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner);
  static Tensor from_vector(const std::vector<float>& v, const Shape& shape);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return (int)shape_.size(); }
  // Size of dimension i; negative i counts from the end.
  int64_t dim(int i) const;
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return dtype_bytes(dtype_, numel()); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }

  void* raw() const { return static_cast<char*>(storage_->data()) + offset_; }
  template <class T>
  T* data() const {
    GANNET_CHECK(dtype_ == dtype_of<T>(), "tensor ", describe(), " accessed as ",
                 dtype_name(dtype_of<T>()));
    return static_cast<T*>(raw());
  }
  float* f32() const { return data<float>(); }
  // The raw 16-bit patterns of a bf16 or f16 tensor.
  uint16_t* half_bits() const {
    GANNET_CHECK(dtype_ == DType::bf16 || dtype_ == DType::f16, "tensor ", describe(), " is not bf16 or f16");
    return static_cast<uint16_t*>(raw());
  }

  // Same storage, another shape with the same element count.
  Tensor view(const Shape& shape) const;
  // Rows [begin, end) of the leading dimension, sharing storage.
  Tensor slice(int64_t begin, int64_t end) const;
  // Row i of the leading dimension, sharing storage, one dimension fewer.
  Tensor operator[](int64_t i) const;
  Tensor clone() const;
  void copy_from(const Tensor& other);
  void fill(float value);
  void zero();
  bool shares_storage(const Tensor& other) const { return storage_ == other.storage_; }

  // "f32[2, 3]": for error messages.
  std::string describe() const;

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;  // bytes
  Shape shape_;
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
};

// The tensor as f32: t itself when it is f32, a widened copy of a bf16 or f16 tensor; throws for
// other dtypes.
Tensor as_f32(const Tensor& t);

// Throws unless t has exactly this shape; `what` names the tensor in the message.
void check_shape(const Tensor& t, const Shape& expected, const std::string& what);

}  // namespace gannet
