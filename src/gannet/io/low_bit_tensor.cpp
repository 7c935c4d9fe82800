#include "gannet/io/low_bit_tensor.h"

#include <cmath>

#include "gannet/core/error.h"
#include "gannet/core/escape.h"
#include "gannet/io/json_config.h"
#include "gannet/io/safetensors.h"

namespace gannet::io {

kernels::LowBitWeights LowBitTensor::view() const {
  kernels::LowBitWeights w;
  w.bits = bits;
  w.N = rows;
  w.K = in;
  w.padded_K = padded_in;
  w.group = group;
  w.sign = static_cast<const uint8_t*>(sign.raw());
  w.nonzero = nonzero.defined() ? static_cast<const uint8_t*>(nonzero.raw()) : nullptr;
  w.scale = scale.f32();
  return w;
}

int64_t LowBitTensor::nbytes() const {
  return (int64_t)sign.nbytes() + (nonzero.defined() ? (int64_t)nonzero.nbytes() : 0) + (int64_t)scale.nbytes();
}

namespace {

void check_plane(const Tensor& plane, const char* plane_name, int64_t rows, int64_t padded_in, int64_t in,
                 const std::string& what) {
  GANNET_CHECK(plane.defined() && plane.dtype() == DType::u8, what, ": ", plane_name, " bits must be u8, got ",
               plane.defined() ? plane.describe() : std::string("none"));
  check_shape(plane, {rows, padded_in / 8}, what + " " + plane_name + " bits");
  const uint8_t* p = static_cast<const uint8_t*>(plane.raw());
  const int64_t row_bytes = padded_in / 8;
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t k = in; k < padded_in; ++k)
      GANNET_CHECK(!kernels::LowBitWeights::bit(p, row_bytes, n, k), what, ": ", plane_name, " bit of padding column ",
                   k, " (input width ", in, ") in row ", n, " is set");
}

}  // namespace

void LowBitTensor::validate(const std::string& what) const {
  GANNET_CHECK(bits == 1 || bits == 2, what, ": ", bits, "-bit weights are not low-bit (1: binary, 2: ternary)");
  GANNET_CHECK(rows > 0 && in > 0, what, ": empty low-bit matrix [", rows, ", ", in, "]");
  GANNET_CHECK(group > 0 && group % kernels::kLowBitWordBits == 0 && padded_in % group == 0 && padded_in >= in &&
                   padded_in - in < group,
               what, ": group ", group, " and padded width ", padded_in, " do not fit input width ", in,
               " (groups are multiples of ", kernels::kLowBitWordBits, ")");
  GANNET_CHECK(group <= kernels::kMaxLowBitGroup, what, ": group ", group, " is wider than ",
               kernels::kMaxLowBitGroup, " columns (the products' int32 sums would overflow)");
  check_plane(sign, "sign", rows, padded_in, in, what);
  if (ternary()) {
    check_plane(nonzero, "nonzero", rows, padded_in, in, what);
    const uint8_t* s = static_cast<const uint8_t*>(sign.raw());
    const uint8_t* z = static_cast<const uint8_t*>(nonzero.raw());
    for (int64_t i = 0; i < rows * (padded_in / 8); ++i)
      GANNET_CHECK((s[i] & ~z[i]) == 0, what, ": a zero weight in row ", i / (padded_in / 8),
                   " has its sign bit set (sign bits must be 0 where nonzero bits are)");
  } else {
    GANNET_CHECK(!nonzero.defined(), what, ": binary weights have no nonzero bits");
  }
  GANNET_CHECK(scale.defined() && scale.dtype() == DType::f32, what, ": scales must be f32");
  const int64_t groups = padded_in / group;
  check_shape(scale, {rows, groups}, what + " scales");
  const float* a = scale.f32();
  for (int64_t i = 0; i < rows * groups; ++i)
    GANNET_CHECK(std::isfinite(a[i]) && a[i] >= 0.f, what, ": scale ", a[i], " of row ", i / groups, ", group ",
                 i % groups, " is not a finite non-negative number");
}

Tensor LowBitTensor::dequantize() const {
  const kernels::LowBitWeights w = view();
  Tensor out = Tensor::empty({rows, in});
  float* o = out.f32();
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t k = 0; k < in; ++k) o[n * in + k] = w.dequantized(n, k);
  return out;
}

void LowBitTensor::append_entries(const std::string& name, std::vector<std::pair<std::string, Tensor>>& out) const {
  out.emplace_back(name + ".sign", sign);
  if (ternary()) out.emplace_back(name + ".nonzero", nonzero);
  out.emplace_back(name + ".scale", scale);
}

nlohmann::json LowBitTensor::metadata() const {
  return {{"bits", bits},           {"group", group}, {"in", in}, {"padded_in", padded_in},
          {"rows", rows},           {"packing", ternary() ? kTernaryPacking : kBinaryPacking}};
}

LowBitTensor LowBitTensor::read(const SafeTensors& file, const std::string& name, const JsonReader& e) {
  const std::string what = file.path() + ": low-bit tensor '" + escape_bytes(name) + "'";
  LowBitTensor t;
  for (const char* key : {"bits", "rows", "in", "padded_in", "group", "packing"})
    GANNET_CHECK(e.has(key), what, ": metadata entry has no '", key, "'");
  const int64_t bits = e.get_int<int64_t>("bits", 0);  // checked before narrowing: 2^32 + 1 is not 1
  GANNET_CHECK(bits == 1 || bits == 2, what, ": has ", bits, " bits (1: binary, 2: ternary)");
  t.bits = (int)bits;
  t.rows = e.get_int<int64_t>("rows", 0, 1);
  t.in = e.get_int<int64_t>("in", 0, 1);
  t.padded_in = e.get_int<int64_t>("padded_in", 0, 1);
  t.group = e.get_int<int64_t>("group", 0, 1);
  const std::string packing = e.get_string("packing", "");
  const char* expected = t.ternary() ? kTernaryPacking : kBinaryPacking;
  GANNET_CHECK(packing == expected, what, ": has packing '", escape_bytes(packing), "' (", t.bits,
               "-bit weights are ", expected, ")");
  auto part = [&](const std::string& suffix) {
    GANNET_CHECK(file.has(name + suffix), what, ": tensor '", escape_bytes(name + suffix), "' is missing");
    return file.get(name + suffix);
  };
  t.sign = part(".sign");
  if (t.ternary()) t.nonzero = part(".nonzero");
  GANNET_CHECK(t.ternary() || !file.has(name + ".nonzero"), what, ": binary weights have a '.nonzero' plane");
  t.scale = part(".scale");
  t.validate(what);
  return t;
}

}  // namespace gannet::io
