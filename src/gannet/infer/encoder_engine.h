// The classifier encoder (models/encoder.h) for inference, without autograd: tokens [B, T] (i32)
// and mask [B, T] (u8, nonzero = a real token) to class logits [B, num_classes], with its block
// products in one of three weight forms (infer/linear_weight.h):
//  - f32, from a models::Encoder;
//  - W8A8 (ZeroQuant): int8 weights (compress/quantizer.h), inputs quantized to int8 token-wise;
//  - low-bit (XTC, W1A8 / W2A8), from an io::LowBitEncoder: binary or ternary planes read as
//    stored, inputs quantized to int8 token-wise; the embedding tables are low-bit too, a lookup
//    dequantizing one row;
//  - N:M sparse (NxMiFormer), from an io::NmSparseEncoder: each block product N:M sparse or dense
//    int8/int4, inputs quantized token-wise to int8, or to int4 (W4A4); f32 embeddings.
// LayerNorms, attention (bidirectional over the sequence's real tokens), GELU (tanh form), mean
// pooling over the real tokens and the classifier run in f32 (the classifier is f32 in every form).
// Only the real tokens' rows are computed: a padding row is neither a key nor pooled, so the
// logits are those of models::Encoder::logits, whose padding rows do not reach them either. A
// sequence without a real token pools to zeros (its logits are the classifier's bias), as there.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gannet/compress/quantizer.h"
#include "gannet/core/tensor.h"
#include "gannet/infer/fused_input_quantization.h"
#include "gannet/infer/linear_weight.h"
#include "gannet/io/low_bit_encoder.h"
#include "gannet/io/nm_sparse_encoder.h"
#include "gannet/models/encoder.h"

namespace gannet::infer {

class EncoderEngine {
 public:
  // f32 weights. With fake_int8_inputs, every block product's input is quantized to int8
  // token-wise and back first (compress::fake_quantize_activations): the low-bit engine's
  // arithmetic simulated in f32 (XTC's training forward).
  static EncoderEngine f32(const models::Encoder& model, bool fake_int8_inputs = false);
  // The same with the inputs quantized as `fake_inputs` says (int8 or int4) and back.
  static EncoderEngine f32(const models::Encoder& model, const io::ActivationQuant& fake_inputs);
  // Block products quantized by `weights` (ZeroQuant, default int8 g64 symmetric) after training
  // (round to nearest), inputs quantized as `inputs` says (default int8 token-wise; int4 for
  // post-training W4A4); the embeddings stay f32.
  static EncoderEngine quantized(const models::Encoder& model, const compress::WeightQuantSpec& weights = {},
                                 const io::ActivationQuant& inputs = {true});
  // Validated (io::LowBitEncoder::validate) first; shares its tensors.
  static EncoderEngine low_bit(const io::LowBitEncoder& model);
  // N:M sparse and dense int8/int4 block products (NxMiFormer), int8 inputs; f32 embeddings.
  // Validated (io::NmSparseEncoder::validate) first; shares its tensors.
  static EncoderEngine nm_sparse(const io::NmSparseEncoder& model);

  const models::EncoderConfig& config() const { return config_; }
  // The block products' form, e.g. "f32", "int8 g64 / a8", "binary per-row / a8".
  std::string describe() const;
  // Bytes of weights one forward reads whatever its batch: the block products and the classifier
  // (with biases and LayerNorms); the embedding tables are read a row per token and left out.
  int64_t weight_bytes() const;

  // Class logits [B, num_classes] f32. Throws one line on tokens that are not i32 [B, T] with
  // 1 <= T <= n_ctx, a mask that is not u8 [B, T], or a token outside the vocabulary.
  Tensor logits(const Tensor& tokens, const Tensor& mask);

  // Whether the LayerNorms and c_fc's GELU quantize the inputs of the dense quantized products that
  // follow them (ZeroQuant's fusion, infer/fused_input_quantization.h), or each product quantizes
  // its f32 input in a pass of its own (the default). Bitwise the same logits either way. Off by
  // default because it measured slower here: at 128-4096 rows the fused GELU re-reads each thread's
  // column block of its output for the maxima and then the codes, where the unfused pass reads a
  // row once and finds it in L1 the second time (docs/NOTES.md).
  void set_fused_input_quantization(bool on) { fused_ = on; }

 private:
  struct Layer {
    LinearWeight qkv, proj, fc, out;
    Tensor ln1_g, ln1_b, ln2_g, ln2_b;
  };
  EncoderEngine() = default;
  void check_inputs(const Tensor& tokens, const Tensor& mask) const;
  void embed(const std::vector<int32_t>& tok, const std::vector<int32_t>& pos);
  void attention(const std::vector<int64_t>& start, const std::vector<int64_t>& count);
  void block(const Layer& L, const std::vector<int64_t>& start, const std::vector<int64_t>& count);
  // LayerNorm (gamma, beta) of x_ and then w's product into y: fused when w takes fused inputs.
  void norm_then(const LinearWeight& w, const Tensor& gamma, const Tensor& beta, float* y, int64_t ldy,
                 kernels::Epilogue e);
  void mlp(const Layer& L);
  void fake_quantize(float* X, int64_t rows, int64_t cols) const;
  void prepare(int64_t rows, int64_t batch, int64_t T);

  models::EncoderConfig config_;
  io::ActivationQuant fake_inputs_;  // quantized: the block products' inputs fake-quantized
  LinearWeight wte_, wpe_, classifier_;
  std::vector<Layer> layers_;
  Tensor lnf_g_, lnf_b_;
  int64_t n_ = 0;  // rows (real tokens) of the current pass
  std::vector<float> x_, xn_, qkv_, att_, hid_, lse_, scratch_;
  bool fused_ = false;
  QuantizedInputs xq_, hq_;  // the fused producers' quantized rows

  friend struct EncoderEngineBuilder;
};

}  // namespace gannet::infer
