#include "gannet/io/quantized_tensor.h"

#include <cmath>
#include <cstring>

#include "gannet/core/error.h"

namespace gannet::io {

kernels::QuantizedWeights QuantizedTensor::view() const {
  kernels::QuantizedWeights w;
  w.bits = bits;
  w.N = rows;
  w.K = padded_in;
  w.group = group;
  w.q = static_cast<const int8_t*>(q.raw());
  w.scale = scale.f32();
  w.zero = zero.defined() ? static_cast<const int8_t*>(zero.raw()) : nullptr;
  return w;
}

int64_t QuantizedTensor::nbytes() const {
  return (int64_t)q.nbytes() + (int64_t)scale.nbytes() + (zero.defined() ? (int64_t)zero.nbytes() : 0);
}

QuantizedTensor QuantizedTensor::row_slice(int64_t begin, int64_t end) const {
  GANNET_CHECK(begin >= 0 && begin < end && end <= rows, "quantized tensor: rows [", begin, ", ", end,
               ") out of range for ", rows, " rows");
  QuantizedTensor t = *this;
  t.rows = end - begin;
  t.q = q.slice(begin, end);
  t.scale = scale.slice(begin, end);
  if (zero.defined()) t.zero = zero.slice(begin, end);
  return t;
}

namespace {
// Bytes of one row of the integers.
int64_t row_bytes(const QuantizedTensor& t) { return t.bits == 8 ? t.padded_in : t.padded_in / 2; }
}  // namespace

QuantizedTensor QuantizedTensor::gather_rows(const std::vector<std::pair<int64_t, int64_t>>& ranges,
                                             int64_t out_rows) const {
  const int64_t groups = padded_in / group, rb = row_bytes(*this);
  QuantizedTensor t = *this;
  t.rows = out_rows;
  t.q = Tensor::zeros({out_rows, rb}, q.dtype());
  t.scale = Tensor::zeros({out_rows, groups}, DType::f32);
  if (zero.defined()) t.zero = Tensor::zeros({out_rows, groups}, DType::i8);
  int64_t at = 0;
  for (const auto& range : ranges) {
    const int64_t b = range.first, e = range.second;  // plain names: lambdas may capture them
    GANNET_CHECK(b >= 0 && b <= e && e <= rows && at + (e - b) <= out_rows, "quantized tensor: rows [", b, ", ", e,
                 ") do not fit");
    auto copy = [&](const Tensor& from, Tensor& to, int64_t bytes) {
      std::memcpy(static_cast<char*>(to.raw()) + at * bytes, static_cast<const char*>(from.raw()) + b * bytes,
                  (e - b) * bytes);
    };
    copy(q, t.q, rb);
    copy(scale, t.scale, groups * 4);
    if (zero.defined()) copy(zero, t.zero, groups);
    at += e - b;
  }
  return t;
}

QuantizedTensor QuantizedTensor::column_slice(int64_t begin, int64_t end) const {
  GANNET_CHECK(begin >= 0 && begin < end && end <= padded_in && begin % group == 0 &&
                   (end % group == 0 || end == padded_in),
               "quantized tensor: columns [", begin, ", ", end, ") do not fall on its groups of ", group);
  GANNET_CHECK(begin < in && (bits == 8 || (begin % 2 == 0 && end % 2 == 0)), "quantized tensor: columns [", begin,
               ", ", end, ") cannot be cut from a ", bits, "-bit matrix of width ", in);
  const int64_t groups = padded_in / group, g0 = begin / group, g1 = end / group, rb = row_bytes(*this);
  const int64_t b0 = bits == 8 ? begin : begin / 2, nb = bits == 8 ? end - begin : (end - begin) / 2;
  QuantizedTensor t = *this;
  t.in = std::min(in, end) - begin;
  t.padded_in = end - begin;
  t.q = Tensor::empty({rows, nb}, q.dtype());
  t.scale = Tensor::empty({rows, g1 - g0}, DType::f32);
  if (zero.defined()) t.zero = Tensor::empty({rows, g1 - g0}, DType::i8);
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(static_cast<char*>(t.q.raw()) + r * nb, static_cast<const char*>(q.raw()) + r * rb + b0, nb);
    std::memcpy(t.scale.f32() + r * (g1 - g0), scale.f32() + r * groups + g0, (g1 - g0) * 4);
    if (zero.defined())
      std::memcpy(static_cast<int8_t*>(t.zero.raw()) + r * (g1 - g0), static_cast<const int8_t*>(zero.raw()) + r * groups + g0,
                  g1 - g0);
  }
  return t;
}

void QuantizedTensor::validate(const std::string& what) const {
  GANNET_CHECK(bits == 8 || bits == 4, what, ": ", bits, "-bit weights are not supported (8 or 4)");
  GANNET_CHECK(rows > 0 && in > 0, what, ": empty quantized matrix [", rows, ", ", in, "]");
  GANNET_CHECK(group > 0 && padded_in % group == 0 && padded_in >= in && padded_in - in < group, what, ": group ",
               group, " and padded width ", padded_in, " do not fit input width ", in);
  const int64_t groups = padded_in / group;
  if (bits == 8) {
    GANNET_CHECK(q.defined() && q.dtype() == DType::i8, what, ": 8-bit integers must be i8, got ",
                 q.defined() ? q.describe() : std::string("none"));
    check_shape(q, {rows, padded_in}, what + " integers");
  } else {
    GANNET_CHECK(padded_in % 2 == 0, what, ": 4-bit rows need an even width, got ", padded_in);
    GANNET_CHECK(q.defined() && q.dtype() == DType::u8, what, ": 4-bit integers must be u8 (two per byte), got ",
                 q.defined() ? q.describe() : std::string("none"));
    check_shape(q, {rows, padded_in / 2}, what + " integers");
  }
  GANNET_CHECK(scale.defined() && scale.dtype() == DType::f32, what, ": scales must be f32");
  check_shape(scale, {rows, groups}, what + " scales");
  const float* s = scale.f32();
  for (int64_t i = 0; i < rows * groups; ++i)
    GANNET_CHECK(std::isfinite(s[i]) && s[i] >= 0.f, what, ": scale ", s[i], " of row ", i / groups, ", group ",
                 i % groups, " is not a finite non-negative number");
  if (zero.defined()) {
    GANNET_CHECK(zero.dtype() == DType::i8, what, ": zero points must be i8, got ", zero.describe());
    check_shape(zero, {rows, groups}, what + " zero points");
    const int lo = bits == 8 ? -128 : -8, hi = bits == 8 ? 127 : 7;
    const int8_t* z = static_cast<const int8_t*>(zero.raw());
    for (int64_t i = 0; i < rows * groups; ++i)
      GANNET_CHECK(z[i] >= lo && z[i] <= hi, what, ": zero point ", (int)z[i], " outside [", lo, ", ", hi, "]");
  }
}

Tensor QuantizedTensor::dequantize() const {
  const kernels::QuantizedWeights w = view();
  Tensor out = Tensor::empty({rows, in});
  float* o = out.f32();
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t k = 0; k < in; ++k) o[n * in + k] = w.dequantized(n, k);
  return out;
}

void QuantizedTensor::append_entries(const std::string& name,
                                     std::vector<std::pair<std::string, Tensor>>& out) const {
  out.emplace_back(name + ".q", q);
  out.emplace_back(name + ".scale", scale);
  if (zero.defined()) out.emplace_back(name + ".zero", zero);
}

}  // namespace gannet::io
