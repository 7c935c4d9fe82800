#include "gannet/core/tensor.h"

#include <cstring>

#include "gannet/core/allocator.h"

namespace gannet {

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Storage::Storage(size_t bytes) : data_(host_alloc(bytes)), bytes_(bytes), owned_(true) {}
Storage::Storage(void* data, size_t bytes, std::shared_ptr<void> owner)
    : data_(data), bytes_(bytes), owned_(false), owner_(std::move(owner)) {}
Storage::~Storage() {
  if (owned_) host_free(data_, bytes_);
}

static void check_dims(const Shape& shape) {
  for (int64_t d : shape) GANNET_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  check_dims(shape);
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(dtype_bytes(dtype, shape_numel(shape)));
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.zero();
  return t;
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape);
  t.fill(value);
  return t;
}

Tensor Tensor::wrap(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner) {
  check_dims(shape);
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(data, dtype_bytes(dtype, shape_numel(shape)), std::move(owner));
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& shape) {
  GANNET_CHECK((int64_t)v.size() == shape_numel(shape), "from_vector: ", v.size(),
               " values for shape ", shape_str(shape));
  Tensor t = empty(shape);
  std::memcpy(t.raw(), v.data(), v.size() * sizeof(float));
  return t;
}

int64_t Tensor::dim(int i) const {
  int n = ndim();
  int j = i < 0 ? i + n : i;
  GANNET_CHECK(j >= 0 && j < n, "dimension ", i, " out of range for ", describe());
  return shape_[j];
}

Tensor Tensor::view(const Shape& shape) const {
  check_dims(shape);
  GANNET_CHECK(shape_numel(shape) == numel(), "cannot view ", describe(), " as ", shape_str(shape));
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  GANNET_CHECK(ndim() >= 1 && begin >= 0 && begin <= end && end <= shape_[0], "slice [", begin, ", ",
               end, ") out of range for ", describe());
  int64_t row = numel() / (shape_[0] ? shape_[0] : 1);
  GANNET_CHECK(dtype_bits(dtype_) >= 8 || (row * begin) % 2 == 0, "int4 slice must start on a byte: ",
               describe());
  Tensor t = *this;
  t.offset_ += dtype_bytes(dtype_, row * begin);
  t.shape_[0] = end - begin;
  return t;
}

Tensor Tensor::operator[](int64_t i) const {
  Tensor t = slice(i, i + 1);
  t.shape_.erase(t.shape_.begin());
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_);
  std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

void Tensor::copy_from(const Tensor& other) {
  GANNET_CHECK(other.dtype_ == dtype_ && other.numel() == numel(), "copy from ", other.describe(),
               " into ", describe());
  std::memmove(raw(), other.raw(), nbytes());
}

void Tensor::fill(float value) {
  GANNET_CHECK(dtype_ == DType::f32, "fill needs f32, got ", describe());
  float* p = f32();
  for (int64_t i = 0, n = numel(); i < n; ++i) p[i] = value;
}

void Tensor::zero() { std::memset(raw(), 0, nbytes()); }

std::string Tensor::describe() const {
  if (!defined()) return "undefined tensor";
  return std::string(dtype_name(dtype_)) + shape_str(shape_);
}

void check_shape(const Tensor& t, const Shape& expected, const std::string& what) {
  GANNET_CHECK(t.defined() && t.shape() == expected, what, ": expected shape ", shape_str(expected),
               ", got ", t.describe());
}

Tensor as_f32(const Tensor& t) {
  if (t.dtype() == DType::f32) return t;
  GANNET_CHECK(t.dtype() == DType::bf16 || t.dtype() == DType::f16, "tensor ", t.describe(),
               " cannot be widened to f32 (bf16 or f16 expected)");
  Tensor out = Tensor::empty(t.shape());
  const uint16_t* in = t.half_bits();
  float* o = out.f32();
  const int64_t n = t.numel();
  if (t.dtype() == DType::bf16) {
    for (int64_t i = 0; i < n; ++i) o[i] = bf16_to_f32(in[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = f16_to_f32(in[i]);
  }
  return out;
}

}  // namespace gannet
