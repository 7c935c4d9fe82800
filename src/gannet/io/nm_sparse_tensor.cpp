#include "gannet/io/nm_sparse_tensor.h"

#include <cmath>

#include "gannet/core/nm_pattern.h"
#include "gannet/core/error.h"
#include "gannet/core/escape.h"
#include "gannet/io/json_config.h"
#include "gannet/io/safetensors.h"

namespace gannet::io {

kernels::NmSparseWeights NmSparseTensor::view() const {
  kernels::NmSparseWeights w;
  w.n = n;
  w.m = m;
  w.bits = bits;
  w.N = rows;
  w.K = in;
  w.group = group;
  w.values = static_cast<const int8_t*>(values.raw());
  w.index = static_cast<const uint8_t*>(index.raw());
  w.scale = scale.f32();
  return w;
}

int64_t NmSparseTensor::nbytes() const {
  return (int64_t)values.nbytes() + (int64_t)index.nbytes() + (int64_t)scale.nbytes();
}

Tensor NmSparseTensor::dequantize() const {
  const kernels::NmSparseWeights w = view();
  Tensor out = Tensor::zeros({rows, in});
  float* o = out.f32();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < w.kept_per_row(); ++j) o[r * in + w.column(r, j)] = w.dequantized(r, j);
  return out;
}

namespace {

void check_values(const kernels::NmSparseWeights& w, const std::string& what) {
  const int limit = w.bits == 8 ? 127 : 7;
  for (int64_t r = 0; r < w.N; ++r)
    for (int64_t j = 0; j < w.kept_per_row(); ++j) {
      const int v = w.value(r, j);
      GANNET_CHECK(v >= -limit && v <= limit, what, ": value ", v, " of row ", r, ", kept entry ", j,
                   " is outside the symmetric ", w.bits, "-bit range");
    }
}

void check_positions(const kernels::NmSparseWeights& w, const std::string& what) {
  const int64_t used_bits = w.kept_per_row() * w.index_bits();
  for (int64_t r = 0; r < w.N; ++r) {
    for (int64_t j = 0; j < w.kept_per_row(); ++j) {
      const int p = w.position(r, j);
      GANNET_CHECK(p < w.m && (j % w.n == 0 || p > w.position(r, j - 1)), what, ": position ", p, " of row ", r,
                   ", kept entry ", j, " is not below ", w.m, " and above the run's previous one");
    }
    const uint8_t* row = w.index + r * w.index_row_bytes();
    for (int64_t b = used_bits; b < w.index_row_bytes() * 8; ++b)
      GANNET_CHECK(!((row[b / 8] >> (b % 8)) & 1), what, ": padding bit ", b, " of row ", r, "'s positions is set");
  }
}

}  // namespace

void NmSparseTensor::validate(const std::string& what) const {
  NmPattern{n, m}.validate(what);
  GANNET_CHECK(bits == 8 || bits == 4, what, ": ", bits, "-bit values (8 or 4)");
  GANNET_CHECK(rows > 0 && in > 0 && in % 32 == 0 && in % m == 0, what, ": a [", rows, ", ", in,
               "] matrix (input width a multiple of 32 and of ", m, ")");
  GANNET_CHECK(group > 0 && group % 32 == 0 && group % m == 0 && in % group == 0, what, ": group ", group,
               " does not divide input width ", in, " into multiples of 32 and of ", m);
  const int64_t kept = in / m * n;
  const DType value_type = bits == 8 ? DType::i8 : DType::u8;
  GANNET_CHECK(values.defined() && values.dtype() == value_type, what, ": values must be ",
               bits == 8 ? "i8" : "u8 (two nibbles a byte)");
  check_shape(values, {rows, bits == 8 ? kept : kept / 2}, what + " values");
  kernels::NmSparseWeights shape;
  shape.n = n;
  shape.m = m;
  shape.K = in;
  GANNET_CHECK(index.defined() && index.dtype() == DType::u8, what, ": positions must be u8");
  check_shape(index, {rows, shape.index_row_bytes()}, what + " positions");
  GANNET_CHECK(scale.defined() && scale.dtype() == DType::f32, what, ": scales must be f32");
  check_shape(scale, {rows, in / group}, what + " scales");
  const float* s = scale.f32();
  for (int64_t i = 0; i < rows * (in / group); ++i)
    GANNET_CHECK(std::isfinite(s[i]) && s[i] >= 0.f, what, ": scale ", s[i], " of row ", i / (in / group), ", group ",
                 i % (in / group), " is not a finite non-negative number");
  check_values(view(), what);
  check_positions(view(), what);
}

void NmSparseTensor::append_entries(const std::string& name, std::vector<std::pair<std::string, Tensor>>& out) const {
  out.emplace_back(name + ".values", values);
  out.emplace_back(name + ".index", index);
  out.emplace_back(name + ".scale", scale);
}

nlohmann::json NmSparseTensor::metadata() const {
  return {{"pattern", std::to_string(n) + ":" + std::to_string(m)},
          {"bits", bits},
          {"rows", rows},
          {"in", in},
          {"group", group},
          {"packing", kNmSparsePacking}};
}

NmSparseTensor NmSparseTensor::read(const SafeTensors& file, const std::string& name, const JsonReader& e) {
  const std::string what = file.path() + ": N:M sparse tensor '" + escape_bytes(name) + "'";
  for (const char* key : {"pattern", "bits", "rows", "in", "group", "packing"})
    GANNET_CHECK(e.has(key), what, ": metadata entry has no '", key, "'");
  NmSparseTensor t;
  const NmPattern p = NmPattern::parse(e.get_string("pattern", ""), what);
  t.n = p.n;
  t.m = p.m;
  const int64_t bits = e.get_int<int64_t>("bits", 0);  // checked before narrowing
  GANNET_CHECK(bits == 8 || bits == 4, what, ": has ", bits, "-bit values (8 or 4)");
  t.bits = (int)bits;
  t.rows = e.get_int<int64_t>("rows", 0, 1);
  t.in = e.get_int<int64_t>("in", 0, 1);
  t.group = e.get_int<int64_t>("group", 0, 1);
  const std::string packing = e.get_string("packing", "");
  GANNET_CHECK(packing == kNmSparsePacking, what, ": has packing '", escape_bytes(packing), "' (expected ",
               kNmSparsePacking, ")");
  auto part = [&](const std::string& suffix) {
    GANNET_CHECK(file.has(name + suffix), what, ": tensor '", escape_bytes(name + suffix), "' is missing");
    return file.get(name + suffix);
  };
  t.values = part(".values");
  t.index = part(".index");
  t.scale = part(".scale");
  t.validate(what);
  return t;
}

}  // namespace gannet::io
