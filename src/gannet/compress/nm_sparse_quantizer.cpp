#include "gannet/compress/nm_sparse_quantizer.h"

#include <vector>

#include "gannet/compress/quantizer.h"
#include "gannet/core/error.h"
#include "gannet/core/limits.h"

namespace gannet::compress {

void NmSparseSpec::validate(const std::string& what) const {
  pattern.validate(what);
  GANNET_CHECK(bits == 8 || bits == 4, what, ": ", bits, "-bit values (8 or 4)");
  GANNET_CHECK(group == 0 || (group > 0 && group % 32 == 0 && group % pattern.m == 0 && group <= kMaxQuantGroup),
               what, ": group ", group, " is not 0 (per row) or a multiple of 32 and of ", pattern.m, " up to ",
               kMaxQuantGroup);
}

std::string NmSparseSpec::describe() const {
  return pattern.describe() + " int" + std::to_string(bits) + (group == 0 ? " per-row" : " g" + std::to_string(group));
}

namespace {

// Sets position code `code` of kept entry j in a row of packed positions.
void put_position(uint8_t* row, int64_t j, int index_bits, int code) {
  const int64_t bit = j * index_bits;
  row[bit / 8] |= (uint8_t)(code << (bit % 8));
  if (bit % 8 + index_bits > 8) row[bit / 8 + 1] |= (uint8_t)(code >> (8 - bit % 8));
}

}  // namespace

io::NmSparseTensor quantize_nm_sparse(const float* W, int64_t N, int64_t K, const NmSparseSpec& spec) {
  spec.validate("N:M sparse quantization");
  const int64_t group = spec.group_for(K);
  GANNET_CHECK(N > 0 && K > 0 && K % 32 == 0 && K % spec.pattern.m == 0 && K % group == 0,
               "N:M sparse quantization: a [", N, ", ", K, "] matrix does not split into groups of ", group,
               " columns (input width a multiple of 32 and of ", spec.pattern.m, ")");
  const std::vector<uint8_t> mask = nm_mask(W, N, K, spec.pattern);
  std::vector<float> projected(W, W + N * K);
  for (int64_t i = 0; i < N * K; ++i)
    if (!mask[(size_t)i]) projected[(size_t)i] = 0.f;
  WeightQuantSpec q;
  q.bits = spec.bits;
  q.group = group == K ? 0 : group;
  const io::QuantizedTensor dense = quantize_weights(projected.data(), N, K, q);
  GANNET_CHECK(dense.padded_in == K && dense.group == group, "N:M sparse quantization: internal: groups of ",
               dense.group, " over ", dense.padded_in, " columns, expected ", group, " over ", K);
  const kernels::QuantizedWeights dq = dense.view();

  io::NmSparseTensor t;
  t.n = spec.pattern.n;
  t.m = spec.pattern.m;
  t.bits = spec.bits;
  t.rows = N;
  t.in = K;
  t.group = group;
  kernels::NmSparseWeights shape;
  shape.n = t.n;
  shape.m = t.m;
  shape.bits = t.bits;
  shape.K = K;
  const int64_t kept = shape.kept_per_row();
  t.values = Tensor::zeros({N, shape.value_row_bytes()}, spec.bits == 8 ? DType::i8 : DType::u8);
  t.index = Tensor::zeros({N, shape.index_row_bytes()}, DType::u8);
  t.scale = dense.scale;
  auto* values = static_cast<uint8_t*>(t.values.raw());
  auto* index = static_cast<uint8_t*>(t.index.raw());
  for (int64_t r = 0; r < N; ++r) {
    int64_t j = 0;
    for (int64_t k = 0; k < K; ++k) {
      if (!mask[(size_t)(r * K + k)]) continue;
      const int v = dq.value(r, k);
      if (spec.bits == 8)
        values[r * kept + j] = (uint8_t)(int8_t)v;
      else
        values[r * (kept / 2) + j / 2] |= (uint8_t)((v & 0x0F) << (j % 2 == 0 ? 0 : 4));
      put_position(index + r * shape.index_row_bytes(), j, shape.index_bits(), (int)(k % spec.pattern.m));
      ++j;
    }
  }
  t.validate("N:M sparse quantization");
  return t;
}

}  // namespace gannet::compress
