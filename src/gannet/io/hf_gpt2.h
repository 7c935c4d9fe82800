// Import of Hugging Face GPT-2 checkpoints: config.json (n_embd, n_head, n_layer, n_positions,
// vocab_size, layer_norm_epsilon) and model.safetensors with names wte, wpe, h.{i}.ln_1,
// h.{i}.attn.c_attn, h.{i}.attn.c_proj, h.{i}.ln_2, h.{i}.mlp.c_fc, h.{i}.mlp.c_proj, ln_f,
// optionally prefixed "transformer.". HF's Conv1D weights are stored [in, out] and are transposed
// to gannet's [out, in]; attn.bias / attn.masked_bias (causal-mask buffers) are skipped; lm_head
// is tied to wte (an lm_head.weight that differs from wte is an error). F32, F16 and BF16 files
// are read; tensors come out f32.
#pragma once
#include <string>

#include "gannet/io/gpt_weights.h"

namespace gannet::io {

// True when `path` is a directory holding config.json and model.safetensors.
bool is_hf_gpt2_dir(const std::string& path);
// Throws gannet::Error naming the file and tensor on anything missing, unknown or mis-shaped.
GptWeights import_hf_gpt2(const std::string& dir);

}  // namespace gannet::io
