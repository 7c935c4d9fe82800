// A GPT's weights as the inference engine and the tools read them, whatever file they came from:
// gannet model/checkpoint files (safetensors with a model_config in the metadata) and Hugging Face
// GPT-2 checkpoints (a directory with config.json and model.safetensors; io/hf_gpt2.h).
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gannet/core/tensor.h"
#include "gannet/models/gpt.h"

namespace gannet::io {

struct GptWeights {
  models::GptConfig config;
  // Under gannet's parameter names and layouts (nn::Linear weights [out, in]): "wte.weight",
  // "wpe.weight", "h.{i}.ln_1.weight", "h.{i}.attn.c_attn.weight", ... "ln_f.bias". f32 or bf16.
  // Checkpoint-only tensors (optimizer moments) are not included.
  std::map<std::string, Tensor> tensors;

  // The tensor `name`, checked for shape (f32 or bf16); throws naming it when missing or wrong.
  const Tensor& at(const std::string& name, const Shape& shape) const;
};

// The names and shapes of a GPT's weights, in the order of models::Gpt::parameters().
std::vector<std::pair<std::string, Shape>> gpt_weight_shapes(const models::GptConfig& config);

// Reads a gannet model or checkpoint (.safetensors) or an HF GPT-2 directory.
GptWeights read_gpt_weights(const std::string& path);

// Copies weights into a training model of the same config (bf16 weights are widened to f32); for
// tests and fine-tuning. Throws when the configs differ.
void load_gpt_weights(const GptWeights& weights, models::Gpt& model);

}  // namespace gannet::io
