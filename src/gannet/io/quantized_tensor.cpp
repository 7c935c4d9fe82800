#include "gannet/io/quantized_tensor.h"

#include <cmath>

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
