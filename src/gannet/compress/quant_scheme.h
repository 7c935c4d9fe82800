// Which parts of a GPT are quantized how: ZeroQuant's per-module schemes. A scheme names the weight
// format of the attention products (c_attn, attn.c_proj), of the MLP (c_fc, mlp.c_proj), of the
// token embedding and of the LM head (tied to the embedding in GPT-2; when the two differ the head
// is stored apart), and whether the products' inputs are quantized to int8 (A8) or stay f32 (A16).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "gannet/compress/quantizer.h"
#include "gannet/io/gpt_weights.h"

namespace gannet::compress {

struct LinearQuant {
  std::optional<WeightQuantSpec> weight;  // nullopt: f32
  bool int8_activations = false;
};

// Layer products whose weight name contains `pattern` ("h.3.attn.c_attn.weight" contains ".attn.",
// "c_fc", "h.3."; "*" matches every product). MoE experts take the rules of the dense MLP they
// replace: a pattern matches "h.3.moe.experts.c_fc.weight" when it is in that name ("experts",
// "moe", "c_fc") or in the dense "h.3.mlp.c_fc.weight" (".mlp.", "mlp", "h.3.mlp.c_fc"; as in
// DeepSpeed, where the MoE layer sits in the block's mlp). The router and PR-MoE's coefficient are
// not products: they stay f32.
struct ProductRule {
  std::string pattern;
  LinearQuant quant;
  bool matches(const std::string& weight_name) const;
};

struct QuantScheme {
  std::string name;
  // The first rule that matches a layer product decides its quantization; unmatched products stay f32.
  std::vector<ProductRule> rules;
  // Products whose inputs are quantized to int8 besides those their rule says (the config form
  // names weight and activation groups apart); a pattern matching an f32 product is an error.
  std::vector<std::string> int8_activation_patterns;
  // Products whose quantized inputs are int4 instead of int8 (W4A4; the INT4 paper's decoder study),
  // with a zero point per token when asymmetric_activations. Token-wise only (no static scales).
  std::vector<std::string> int4_activation_patterns;
  bool asymmetric_activations = false;
  std::optional<WeightQuantSpec> embedding, lm_head;
  bool lm_head_int8_activations = false;
  // A8 with one calibrated scale per product instead of a scale per token (needs calibration data).
  bool static_activations = false;

  // The quantization of layer weight `name` ("h.3.mlp.c_fc.weight"), by the rules.
  LinearQuant for_layer_weight(const std::string& name) const;
  // How the input of quantized product `name` is quantized when it is (int8, or int4 by the int4
  // patterns; the static scale is set by quantize_model).
  io::ActivationQuant input_of(const std::string& name) const;
  std::string describe() const;
};

// Options of the presets (the command line's).
struct SchemeOptions {
  int64_t group = 64;  // 0: per row
  bool symmetric = true;
  // "default" (the scheme's choice), "f32", "int8" or "int4".
  std::string embedding = "default", lm_head = "default";
  bool static_activations = false;
  bool asymmetric_activations = false;  // w4a4: a zero point per token
};

// The named schemes: w8a8, w4a8, w8a16, w4a16, mixed (W8 attention + W4 MLP, A8 everywhere), and
// w4a4 (int4 weights and int4 token-wise inputs in every block product; the embedding and LM head
// int4 weight-only).
// By default the embedding and LM head take the scheme's narrowest weight format, weight-only.
QuantScheme scheme_preset(const std::string& name, const SchemeOptions& options);
std::vector<std::string> scheme_names();

// Throws unless the model can be quantized this way: a Mixture-of-Experts model quantizes by plain
// rounding (its experts as the MLP, the router and coefficient in f32), but neither layer-by-layer
// distillation (`lkd`: --lkd-steps, --data-free) nor static activation scales (their calibration
// pass) support MoE blocks yet.
void check_quantizable(const models::GptConfig& config, bool lkd = false, bool static_activations = false);

// Quantizes a float model's weights by plain rounding (LKD refines them afterwards). Static
// activation scales, when the scheme asks for them, are set from `activation_max_abs` (the largest
// |input| of each product on calibration data, by weight name; see compress/calibration.h).
io::GptWeights quantize_model(const io::GptWeights& model, const QuantScheme& scheme,
                              const std::map<std::string, float>& activation_max_abs = {});

// The names of a GPT's layer products ("h.{i}.attn.c_attn.weight", ...), in model order: per
// block attn.c_attn, attn.c_proj, mlp.c_fc and mlp.c_proj where the block has a dense MLP, and in
// an MoE block moe.experts.c_fc and moe.experts.c_proj (each [E, out, in], quantized as one
// [E * out, in] matrix).
std::vector<std::string> layer_weight_names(const models::GptConfig& config);

}  // namespace gannet::compress
