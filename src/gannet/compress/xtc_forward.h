// The classifier encoder's forward pass as XTC trains it: every block product with its weight
// binarized or ternarized and its input quantized to int8 per token, simulated in f32 with
// straight-through gradients (compress/low_bit_fake_quant.h, compress/simulated_quant.h), and the
// embedding tables quantized per row when the config says so. The packed engine
// (infer/encoder_engine.h) computes the same products with integer kernels.
//
// It records what distillation compares: the hidden states (the embedding output, then each
// block's output) and each block's attention scores. Without a config it is the plain f32 forward
// (the teacher's), equal to models::Encoder::logits.
#pragma once
#include <vector>

#include "gannet/compress/xtc_config.h"
#include "gannet/models/encoder.h"

namespace gannet::compress {

using autograd::Var;

struct EncoderTrace {
  Var logits;                // [B, num_classes]
  std::vector<Var> hidden;   // [n_layer + 1] of [B*T, C] (kept when asked)
  std::vector<Var> scores;   // [n_layer] of [B * n_head * T, T] (kept when asked)
};

struct TraceRequest {
  bool hidden = false;
  bool scores = false;
};

// tokens [B, T] i32, mask [B, T] u8. quant: nullptr for the f32 forward.
EncoderTrace traced_forward(const models::Encoder& model, const XtcConfig* quant, const Tensor& tokens,
                            const Tensor& mask, TraceRequest want);

}  // namespace gannet::compress
