// A GPT's weights as the inference engine and the tools read them, whatever file they came from:
// gannet model/checkpoint files (safetensors with a model_config in the metadata) and Hugging Face
// GPT-2 checkpoints (a directory with config.json and model.safetensors; io/hf_gpt2.h), and
// quantized models written by `gannet quantize` (packed integers, io/quantized_tensor.h, with the
// scheme in the metadata key "quantization").
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gannet/core/tensor.h"
#include "gannet/io/quantized_tensor.h"
#include "gannet/models/gpt.h"

namespace gannet::io {

struct GptWeights {
  models::GptConfig config;
  // Under gannet's parameter names and layouts (nn::Linear weights [out, in]): "wte.weight",
  // "wpe.weight", "h.{i}.ln_1.weight", "h.{i}.attn.c_attn.weight", ... "ln_f.bias". f32 or bf16.
  // Checkpoint-only tensors (optimizer moments) are not included.
  // A quantized model holds its quantized weights here instead (same names). The tied
  // embedding/LM head "wte.weight" may be quantized too; when the LM head is quantized differently
  // from the embedding, it is stored apart as "lm_head.weight" (quantized) beside "wte.weight".
  std::map<std::string, Tensor> tensors;
  std::map<std::string, QuantizedTensor> quantized;
  // The input quantization of each quantized Linear, by weight name (absent: f32 input).
  std::map<std::string, ActivationQuant> activations;
  std::string scheme;  // e.g. "w8a8"; empty for a float model
  // Free-form record of how the model was quantized (options, LKD figures), kept in the file.
  std::string quantization_notes;

  bool is_quantized() const { return !quantized.empty(); }
  // The f32/bf16 tensor `name`, checked for shape; throws naming it when missing, quantized or wrong.
  const Tensor& at(const std::string& name, const Shape& shape) const;
  // The weight `name` in f32 [shape], dequantized if it is quantized.
  Tensor dense(const std::string& name, const Shape& shape) const;
  // The quantized weight `name` or nullptr; checks its shape against `shape` when present. A
  // quantized matrix is 2-D [rows, in]; an MoE expert tensor [E, out, in] is quantized whole as the
  // matrix [E * out, in] (each expert's rows as its own matrix would be), so for it `shape` may be
  // either the 2-D [E * out, in] or the model's [E, out, in].
  const QuantizedTensor* find_quantized(const std::string& name, const Shape& shape) const;
  ActivationQuant activation(const std::string& weight_name) const;
};

// The names and shapes of a GPT's weights, in the order of models::Gpt::parameters().
std::vector<std::pair<std::string, Shape>> gpt_weight_shapes(const models::GptConfig& config);

// The weights a quantized model may store quantized, each with the [rows, in] of its quantized
// matrix: the token embedding, every block's products (attn.c_attn, attn.c_proj, mlp.c_fc,
// mlp.c_proj where the block has a dense MLP, and in an MoE block moe.experts.c_fc [E * 4C, C] and
// moe.experts.c_proj [E * C, 4C]) and a separate LM head "lm_head.weight". The MoE router
// (moe.gate), PR-MoE's mixing coefficient, biases, LayerNorms and the position embedding stay f32.
std::vector<std::pair<std::string, Shape>> quantizable_weight_shapes(const models::GptConfig& config);

// Reads a gannet model or checkpoint (.safetensors), a sharded checkpoint (its manifest.json or
// the directory holding it; the weights are reassembled whole), or an HF GPT-2 directory.
GptWeights read_gpt_weights(const std::string& path);

// Writes a gannet model file (safetensors, atomically): float tensors as they are, quantized ones
// as NAME.q / NAME.scale / NAME.zero, with the model config and the quantization in the metadata.
void write_gpt_weights(const std::string& path, const GptWeights& weights);

// Copies weights into a training model of the same config (bf16 weights are widened to f32,
// quantized ones dequantized); for tests, fine-tuning and distillation. Throws when the configs differ.
void load_gpt_weights(const GptWeights& weights, models::Gpt& model);

}  // namespace gannet::io
