// A classifier encoder (models/encoder.h) compressed by XTC and stored packed: one safetensors file
// whose every block product weight (h.<i>.attn.c_attn.weight, h.<i>.attn.c_proj.weight,
// h.<i>.mlp.c_fc.weight, h.<i>.mlp.c_proj.weight) and both embedding tables (wte.weight,
// wpe.weight: one scale per row, so that a lookup dequantizes one row) are binary or ternary bit
// planes (io/low_bit_tensor.h), and everything else (biases, LayerNorms, ln_f, the classifier) is
// f32 under its parameter name. Metadata: "quantization" as io/low_bit_file.h writes it (format
// gannet-lowbit-1, the scheme, every low-bit weight), "model_type" "encoder" and "model_config"
// (the EncoderConfig as JSON, io/encoder_checkpoint.h). The encoder checkpoint and GPT readers
// refuse such a file by name, and this reader refuses theirs.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gannet/core/tensor.h"
#include "gannet/io/low_bit_tensor.h"
#include "gannet/models/encoder.h"

namespace gannet::io {

class SafeTensors;

struct LowBitEncoder {
  models::EncoderConfig config;  // num_classes >= 2, mlm_head false
  std::string scheme;            // w1a8 | w2a8: every low-bit weight has its bits
  std::map<std::string, LowBitTensor> low_bit;
  std::map<std::string, Tensor> dense;  // f32

  // Bytes stored, by part: the block products' planes and scales, the embeddings', the f32 rest.
  struct Bytes {
    int64_t products = 0, embeddings = 0, dense = 0;
    int64_t total() const { return products + embeddings + dense; }
  };
  Bytes bytes() const;
  int64_t nbytes() const { return bytes().total(); }
  // Throws one line naming `what` unless the config is a classifier's, the scheme is known, and
  // low_bit and dense hold exactly the expected names with their shapes (f32 for dense), every
  // low-bit tensor valid and of the scheme's bits.
  void validate(const std::string& what) const;
};

// The names a packed encoder of `config` holds low-bit, with their [rows, in] shapes, and dense.
std::vector<std::pair<std::string, Shape>> low_bit_encoder_low_bit_shapes(const models::EncoderConfig& config);
std::vector<std::pair<std::string, Shape>> low_bit_encoder_dense_shapes(const models::EncoderConfig& config);
// wte.weight and wpe.weight.
bool is_embedding_table(const std::string& name);

// Validates (LowBitEncoder::validate) before writing anything; writes atomically.
void save_low_bit_encoder(const std::string& path, const LowBitEncoder& model);
// Reads and validates everything (the config, every expected tensor with its shape, no unknown
// tensor, every low-bit weight against the file); one-line errors naming the file.
LowBitEncoder read_low_bit_encoder(const std::string& path);
// Whether an open file is a packed low-bit encoder (model_type "encoder" and low-bit
// quantization metadata).
bool is_low_bit_encoder(const SafeTensors& file);

}  // namespace gannet::io
