// `gannet quantize` on a classifier encoder (io/encoder_checkpoint.h): post-training quantization
// of every block product (the INT4 paper's PTQ beside its QAT), into the packed file the encoder
// engine runs (io/nm_sparse_encoder.h, every product dense):
//   w8a8  int8 weights, int8 token-wise inputs;
//   w4a8  int4 weights, int8 token-wise inputs;
//   w4a4  int4 weights, int4 token-wise inputs (symmetric, or asymmetric with
//         asymmetric_activations: a zero point per token).
// Weights are symmetric, `group` input columns per scale (0: one per row); embeddings, LayerNorms
// and the classifier stay f32. Round to nearest, or with ZeroQuant's LKD first
// (compress/encoder_lkd.h) on windows of a classification split (no labels used).
#pragma once
#include <cstdint>
#include <string>

namespace gannet::cli {

// The scheme names quantize_encoder takes.
bool is_encoder_scheme(const std::string& scheme);

struct EncoderLkdArgs {
  int64_t steps = 0;  // 0: round to nearest
  float lr = 1e-4f;
  std::string calib;  // a classification split (e.g. data/brown/tasks/brown-mode/train.safetensors)
  int64_t batches = 16, batch = 8;  // calibration windows: batches x batch, drawn without replacement
  uint64_t seed = 1;
  bool progress = true;
};

// Reads the checkpoint, quantizes, writes `out` atomically and prints the products' forms and the
// sizes (and with LKD each block's output error before and after). One-line errors on a scheme it
// does not take, a model that is not a classifier, or calibration windows that do not fit it.
void quantize_encoder(const std::string& in, const std::string& out, const std::string& scheme, int64_t group,
                      bool asymmetric_activations, const EncoderLkdArgs& lkd);

}  // namespace gannet::cli
