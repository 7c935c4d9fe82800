// `gannet quantize` on a classifier encoder (io/encoder_checkpoint.h): post-training quantization
// by round to nearest of every block product (the INT4 paper's PTQ baseline beside its QAT), into
// the packed file the encoder engine runs (io/nm_sparse_encoder.h, every product dense):
//   w8a8  int8 weights, int8 token-wise inputs;
//   w4a8  int4 weights, int8 token-wise inputs;
//   w4a4  int4 weights, int4 token-wise inputs (symmetric, or asymmetric with
//         asymmetric_activations: a zero point per token).
// Weights are symmetric, `group` input columns per scale (0: one per row); embeddings, LayerNorms
// and the classifier stay f32.
#pragma once
#include <cstdint>
#include <string>

namespace gannet::cli {

// The scheme names quantize_encoder takes.
bool is_encoder_scheme(const std::string& scheme);

// Reads the checkpoint, quantizes, writes `out` atomically and prints the products' forms and the
// sizes. One-line errors on a scheme it does not take or a model that is not a classifier.
void quantize_encoder(const std::string& in, const std::string& out, const std::string& scheme, int64_t group,
                      bool asymmetric_activations);

}  // namespace gannet::cli
