#include "gannet/nn/random_ltd.h"

#include <algorithm>
#include <numeric>

#include "gannet/autograd/token_ops.h"

namespace gannet::nn {

Tensor random_ltd_indices(int64_t B, int64_t T, int64_t keep, Rng& rng) {
  GANNET_CHECK(keep >= 1 && keep <= T, "random-LTD: cannot keep ", keep, " of ", T, " tokens");
  Tensor idx = Tensor::empty({B * keep}, DType::i32);
  std::vector<int32_t> perm((size_t)T);
  for (int64_t b = 0; b < B; ++b) {
    std::iota(perm.begin(), perm.end(), 0);
    for (int64_t i = 0; i < keep; ++i) {  // partial Fisher-Yates: the first `keep` are a uniform subset
      int64_t j = i + (int64_t)rng.below((uint64_t)(T - i));
      std::swap(perm[(size_t)i], perm[(size_t)j]);
    }
    std::sort(perm.begin(), perm.begin() + keep);
    int32_t* out = idx.data<int32_t>() + b * keep;
    for (int64_t i = 0; i < keep; ++i) out[i] = (int32_t)(b * T + perm[(size_t)i]);
  }
  return idx;
}

Var random_ltd_block(const Block& block, const Var& x, int64_t B, int64_t T, int64_t keep, const Tensor& idx,
                     bool causal, const Tensor& key_mask,
                     MoePass* moe_pass) {
  GANNET_CHECK(idx.numel() == B * keep, "random-LTD: ", idx.numel(), " indices for B=", B, " keep=", keep);
  Tensor kept_mask;
  if (key_mask.defined()) {
    GANNET_CHECK(key_mask.dtype() == DType::u8 && key_mask.shape() == Shape({B, T}),
                 "random-LTD: key mask must be u8[", B, ", ", T, "], got ", key_mask.describe());
    kept_mask = Tensor::empty({B, keep}, DType::u8);
    for (int64_t i = 0; i < B * keep; ++i) kept_mask.data<uint8_t>()[i] = key_mask.data<uint8_t>()[idx.data<int32_t>()[i]];
  }
  Var kept = autograd::gather_rows(x, idx);
  Var out = block.forward(kept, B, keep, causal, kept_mask, moe_pass);
  return autograd::scatter_rows(x, out, idx);
}

}  // namespace gannet::nn
