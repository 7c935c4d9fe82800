// A classifier encoder (models/encoder.h) compressed by NxMiFormer and stored packed: one
// safetensors file whose block product weights (h.<i>.attn.c_attn.weight, h.<i>.attn.c_proj.weight,
// h.<i>.mlp.c_fc.weight, h.<i>.mlp.c_proj.weight) are each either N:M sparse with int8/int4 kept
// values (io/nm_sparse_tensor.h: NAME.values, NAME.index, NAME.scale) or dense int8/int4
// (io/quantized_tensor.h: NAME.q, NAME.scale; symmetric), and everything else (embeddings, biases,
// LayerNorms, ln_f, the classifier) f32 under its parameter name. Metadata: "nm_sparse" =
// {"format": "gannet-nmsparse-1", "weights": {NAME: {"form": "nm", and the N:M tensor's entry} or
// {"form": "dense", "bits", "group", "in", "padded_in"}}}, "model_type" "encoder" and
// "model_config" (the EncoderConfig as JSON). The block products take int8 token-wise inputs, or
// int4 ones (W4A4) where a weight's entry has "inputs": {"bits": 4, "asymmetric": bool}.
// The encoder checkpoint reader refuses such a file by name, and this reader refuses others.
#pragma once
#include <map>
#include <string>

#include "gannet/core/tensor.h"
#include "gannet/io/nm_sparse_tensor.h"
#include "gannet/io/quantized_tensor.h"
#include "gannet/models/encoder.h"

namespace gannet::io {

class SafeTensors;

inline constexpr const char* kNmSparseFormat = "gannet-nmsparse-1";

struct NmSparseEncoder {
  models::EncoderConfig config;                  // num_classes >= 2, mlm_head false
  std::map<std::string, NmSparseTensor> sparse;  // N:M block products
  std::map<std::string, QuantizedTensor> quantized;  // dense block products (symmetric)
  std::map<std::string, Tensor> dense;           // f32: the rest
  // Block products whose inputs are not int8 token-wise (absent: int8, as files before W4A4).
  std::map<std::string, ActivationQuant> inputs;
  // The input quantization of block product `name`.
  ActivationQuant input(const std::string& name) const;

  struct Bytes {
    int64_t products = 0, dense = 0;  // the block products' stored bytes; the f32 rest
    int64_t total() const { return products + dense; }
  };
  Bytes bytes() const;
  // Throws one line naming `what` unless the config is a classifier's, every block product is in
  // exactly one of sparse and quantized with its shape (valid, symmetric), dense holds exactly
  // the other parameters, f32 with their shapes, and inputs names block products with token-wise
  // int8 or int4 (asymmetric: int4 only) inputs.
  void validate(const std::string& what) const;
};

// Validates before writing anything; writes atomically.
void save_nm_sparse_encoder(const std::string& path, const NmSparseEncoder& model);
// Reads and validates everything; one-line errors naming the file.
NmSparseEncoder read_nm_sparse_encoder(const std::string& path);
// Whether an open file holds NxMiFormer weights (the "nm_sparse" metadata of this format).
bool holds_nm_sparse_weights(const SafeTensors& file);

}  // namespace gannet::io
