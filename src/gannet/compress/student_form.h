// What a compressed student (XTC, NxMiFormer) changes in the classifier encoder's forward pass
// while it trains (compress/xtc_forward.h): the weight each block product multiplies by, usually
// a fake-quantized (and, for N:M sparsity, masked) form of the latent f32 weight with
// straight-through gradients, the embedding tables, and how each block product's input is
// quantized (int8 token-wise by default; int4 for W4A4), as the packed engines run them.
#pragma once
#include <cstdint>

#include "gannet/autograd/variable.h"
#include "gannet/io/quantized_tensor.h"

namespace gannet::compress {

class StudentForm {
 public:
  virtual ~StudentForm() = default;
  // The weight block `layer`'s product `product` (an index into compress::kBlockProducts:
  // attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj) uses, from its latent weight w [out, in].
  virtual autograd::Var weight(int64_t layer, int product, const autograd::Var& w) const = 0;
  // The token or position table a lookup reads (the latent one by default).
  virtual autograd::Var embedding_table(const autograd::Var& table) const { return table; }
  // How the input of block `layer`'s product `product` is quantized (always quantized).
  virtual io::ActivationQuant input(int64_t /*layer*/, int /*product*/) const { return {true}; }
};

}  // namespace gannet::compress
