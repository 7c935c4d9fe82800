#include "gannet/compress/low_bit_quantizer.h"

#include <algorithm>
#include <cmath>

#include "gannet/core/error.h"
#include "gannet/core/limits.h"
#include "gannet/core/round_up.h"

namespace gannet::compress {

namespace {

constexpr int64_t kWord = kernels::kLowBitWordBits;

void set_bit(uint8_t* row, int64_t k) { row[k / 8] |= uint8_t(1u << (k % 8)); }

// One group of real columns w[0, n) into bits [k0, k0 + n) of the planes (nonzero: null for
// binary); returns alpha.
float pack_group(const float* w, int64_t n, int bits, int64_t k0, uint8_t* sign, uint8_t* nonzero) {
  return quantize_low_bit_group(w, n, bits, [&](int64_t i, int v) {
    if (v != 0 && nonzero) set_bit(nonzero, k0 + i);
    if (v > 0) set_bit(sign, k0 + i);
  });
}

}  // namespace

int64_t LowBitSpec::padded_width(int64_t K) const {
  const int64_t row = round_up(K, kWord);
  return group == 0 || group >= row ? row : round_up(K, group);
}

int64_t LowBitSpec::group_for(int64_t K) const {
  const int64_t row = round_up(K, kWord);
  return group == 0 || group >= row ? row : group;
}

void LowBitSpec::validate() const {
  GANNET_CHECK(bits == 1 || bits == 2, "low-bit weights have 1 (binary) or 2 (ternary) bits, got ", bits);
  GANNET_CHECK(group == 0 || (group > 0 && group % kWord == 0 && group <= kMaxQuantGroup), "low-bit group ", group,
               " is not 0 (per row) or a positive multiple of ", kWord, " up to ", kMaxQuantGroup);
}

std::string LowBitSpec::describe() const {
  return str(bits == 1 ? "binary" : "ternary", group == 0 ? std::string(" per-row") : str(" g", group));
}

io::LowBitTensor quantize_low_bit(const float* W, int64_t N, int64_t K, const LowBitSpec& spec) {
  check_low_bit_input(W, N, K, spec);
  io::LowBitTensor t;
  t.bits = spec.bits;
  t.rows = N;
  t.in = K;
  t.padded_in = spec.padded_width(K);
  t.group = spec.group_for(K);
  const int64_t row_bytes = t.padded_in / 8, groups = t.padded_in / t.group;
  t.sign = Tensor::zeros({N, row_bytes}, DType::u8);
  if (t.ternary()) t.nonzero = Tensor::zeros({N, row_bytes}, DType::u8);
  t.scale = Tensor::empty({N, groups});
  uint8_t* sign = static_cast<uint8_t*>(t.sign.raw());
  uint8_t* nonzero = t.ternary() ? static_cast<uint8_t*>(t.nonzero.raw()) : nullptr;
  float* alpha = t.scale.f32();
  for (int64_t n = 0; n < N; ++n) {
    const float* w = W + n * K;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t k0 = g * t.group, len = std::min(t.group, K - k0);  // the last group may be partly padding
      alpha[n * groups + g] = pack_group(w + k0, len, t.bits, k0, sign + n * row_bytes,
                                         nonzero ? nonzero + n * row_bytes : nullptr);
    }
  }
  return t;
}

void check_low_bit_input(const float* W, int64_t N, int64_t K, const LowBitSpec& spec) {
  spec.validate();
  GANNET_CHECK(N > 0 && K > 0, "low-bit quantization of an empty matrix [", N, ", ", K, "]");
  GANNET_CHECK(spec.group_for(K) <= kernels::kMaxLowBitGroup, "low-bit quantization: one scale per row of ", K,
               " columns is wider than ", kernels::kMaxLowBitGroup, " (give a group)");
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      GANNET_CHECK(std::isfinite(W[n * K + k]), "low-bit quantization: weight [", n, ", ", k, "] is ", W[n * K + k]);
}

io::LowBitTensor quantize_low_bit(const Tensor& W, const LowBitSpec& spec) {
  GANNET_CHECK(W.defined() && W.dtype() == DType::f32 && W.ndim() == 2, "low-bit quantization needs an f32 matrix, got ",
               W.defined() ? W.describe() : std::string("none"));
  return quantize_low_bit(W.f32(), W.dim(0), W.dim(1), spec);
}

}  // namespace gannet::compress
