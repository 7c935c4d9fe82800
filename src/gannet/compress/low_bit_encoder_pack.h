// XTC's last step: a classifier encoder trained with simulated low-bit weights (f32 holding the
// values to quantize) packed into io::LowBitEncoder, the form stored and run with real low-bit
// kernels (infer/encoder_engine.h).
#pragma once
#include <string>

#include "gannet/compress/low_bit_quantizer.h"
#include "gannet/io/low_bit_encoder.h"
#include "gannet/models/encoder.h"

namespace gannet::compress {

// Quantizes every block product weight by `products` and both embedding tables by `embeddings`
// (whose scales must be one per row: group 0, or a group as wide as the row), and copies the rest
// as f32. Both specs' bits must be `scheme`'s (w1a8: 1, w2a8: 2). Throws one line on a model that
// is not a classifier (num_classes >= 2, no MLM head), a spec that does not fit, or a weight that
// is not finite.
io::LowBitEncoder pack_low_bit_encoder(const models::Encoder& f32_model, const LowBitSpec& products,
                                       const LowBitSpec& embeddings, const std::string& scheme);

}  // namespace gannet::compress
