#include "gannet/compress/quant_scheme.h"

#include <algorithm>

#include "gannet/core/error.h"

namespace gannet::compress {

namespace {
WeightQuantSpec weight_spec(int bits, const SchemeOptions& o) {
  WeightQuantSpec s;
  s.bits = bits;
  s.group = o.group;
  s.symmetric = o.symmetric;
  s.validate();
  return s;
}

std::optional<WeightQuantSpec> table_spec(const std::string& what, const std::string& choice, int default_bits,
                                          const SchemeOptions& o) {
  if (choice == "default") return weight_spec(default_bits, o);
  if (choice == "f32") return std::nullopt;
  if (choice == "int8") return weight_spec(8, o);
  if (choice == "int4") return weight_spec(4, o);
  fail(str("unknown ", what, " format '", choice, "' (default, f32, int8, int4)"));
}

std::string spec_text(const std::optional<WeightQuantSpec>& s) { return s ? s->describe() : "f32"; }
}  // namespace

std::vector<std::string> scheme_names() { return {"w8a8", "w4a8", "w8a16", "w4a16", "mixed", "w4a4"}; }

QuantScheme scheme_preset(const std::string& name, const SchemeOptions& o) {
  QuantScheme s;
  s.name = name;
  int attn_bits = 0, mlp_bits = 0;
  bool a8 = false;
  if (name == "w8a8") attn_bits = mlp_bits = 8, a8 = true;
  else if (name == "w4a8") attn_bits = mlp_bits = 4, a8 = true;
  else if (name == "w8a16") attn_bits = mlp_bits = 8;
  else if (name == "w4a16") attn_bits = mlp_bits = 4;
  else if (name == "mixed") attn_bits = 8, mlp_bits = 4, a8 = true;
  else if (name == "w4a4") attn_bits = mlp_bits = 4, a8 = true, s.int4_activation_patterns = {"*"};
  else fail(str("unknown quantization scheme '", name, "' (w8a8, w4a8, w8a16, w4a16, mixed, w4a4)"));
  GANNET_CHECK(!o.asymmetric_activations || name == "w4a4",
               "asymmetric activations are int4 only (scheme w4a4; ", name, " has none)");
  GANNET_CHECK(!o.static_activations || name != "w4a4",
               "static activation scales are int8 only (w4a4's int4 inputs are token-wise)");
  s.asymmetric_activations = o.asymmetric_activations;
  s.rules = {{".attn.", {weight_spec(attn_bits, o), a8}}, {".mlp.", {weight_spec(mlp_bits, o), a8}}};
  const int narrow = std::min(attn_bits, mlp_bits);
  s.embedding = table_spec("embedding", o.embedding, narrow, o);
  s.lm_head = table_spec("LM head", o.lm_head, narrow, o);
  GANNET_CHECK(!s.embedding || s.lm_head, "an f32 LM head with a quantized embedding is not supported (they share "
               "one tensor): quantize the LM head too, or keep the embedding in f32");
  GANNET_CHECK(!o.static_activations || a8, "static activation scales need a scheme with int8 activations (",
               name, " keeps them in f32)");
  s.static_activations = o.static_activations;
  return s;
}

namespace {
// The dense MLP weight an MoE expert weight stands for ("h.3.moe.experts.c_fc.weight" ->
// "h.3.mlp.c_fc.weight"); empty for any other name.
std::string dense_counterpart(const std::string& name) {
  static const std::string experts = ".moe.experts.";
  const size_t at = name.find(experts);
  if (at == std::string::npos) return {};
  return name.substr(0, at) + ".mlp." + name.substr(at + experts.size());
}
}  // namespace

bool ProductRule::matches(const std::string& weight_name) const {
  if (pattern == "*" || weight_name.find(pattern) != std::string::npos) return true;
  const std::string dense = dense_counterpart(weight_name);
  return !dense.empty() && dense.find(pattern) != std::string::npos;
}

LinearQuant QuantScheme::for_layer_weight(const std::string& name) const {
  LinearQuant q;
  for (const ProductRule& r : rules)
    if (r.matches(name)) {
      q = r.quant;
      break;
    }
  for (const std::string& p : int8_activation_patterns)
    if (ProductRule{p, {}}.matches(name)) {
      GANNET_CHECK(q.weight, "quantization scheme: int8 activations for '", name, "' (modules '", p,
                   "'), whose weight stays f32; quantize its weight too");
      q.int8_activations = true;
    }
  return q;
}

io::ActivationQuant QuantScheme::input_of(const std::string& name) const {
  io::ActivationQuant a{true};
  for (const std::string& p : int4_activation_patterns)
    if (ProductRule{p, {}}.matches(name)) {
      a.bits = 4;
      a.asymmetric = asymmetric_activations;
    }
  return a;
}

std::string QuantScheme::describe() const {
  const bool all4 = int4_activation_patterns.size() == 1 && int4_activation_patterns[0] == "*";
  auto linear = [&](const LinearQuant& l) {
    return str(spec_text(l.weight), !l.int8_activations ? " / f32" : all4 ? (asymmetric_activations ? " / a4 asym" : " / a4") : " / a8");
  };
  std::string text = name + ":";
  for (const ProductRule& r : rules) text += str(" ", r.pattern == "*" ? "all" : r.pattern == ".attn." ? "attention" : r.pattern == ".mlp." ? "mlp" : "'" + r.pattern + "'", " ", linear(r.quant), ",");
  for (const std::string& p : int8_activation_patterns) text += str(" int8 inputs for '", p, "',");
  if (!all4)
    for (const std::string& p : int4_activation_patterns)
      text += str(" int4", asymmetric_activations ? " asymmetric" : "", " inputs for '", p, "',");
  return str(text, " embedding ", spec_text(embedding), ", lm head ", spec_text(lm_head),
             lm_head_int8_activations ? " / a8" : "",
             static_activations ? ", static activation scales" : "");
}

std::vector<std::string> layer_weight_names(const models::GptConfig& c) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const bool moe = c.moe.experts_at(i, c.n_layer) > 0;
    for (const char* m : {"attn.c_attn", "attn.c_proj"}) names.push_back(str("h.", i, ".", m, ".weight"));
    if (!moe || c.moe.use_residual)
      for (const char* m : {"mlp.c_fc", "mlp.c_proj"}) names.push_back(str("h.", i, ".", m, ".weight"));
    if (moe)
      for (const char* m : {"moe.experts.c_fc", "moe.experts.c_proj"}) names.push_back(str("h.", i, ".", m, ".weight"));
  }
  return names;
}

void check_quantizable(const models::GptConfig& c, bool lkd, bool static_activations) {
  if (!c.moe.enabled()) return;
  GANNET_CHECK(!lkd, "quantize: LKD (--lkd-steps, --data-free) does not support Mixture-of-Experts blocks yet; "
               "plain round-to-nearest quantization (without --lkd-steps) works");
  GANNET_CHECK(!static_activations, "quantize: static activation scales do not support Mixture-of-Experts blocks "
               "yet (the calibration pass runs dense blocks only); use token-wise activation scales");
}

io::GptWeights quantize_model(const io::GptWeights& fp, const QuantScheme& s,
                              const std::map<std::string, float>& act_max) {
  check_quantizable(fp.config, false, s.static_activations);
  GANNET_CHECK(!fp.is_quantized(), "quantize: the model is already quantized (", fp.scheme,
               "); start from a float model");
  const models::GptConfig& c = fp.config;
  io::GptWeights out;
  out.config = c;
  out.scheme = s.name;
  // The layer products, each with its shape as a matrix (an expert tensor [E, out, in] as [E * out, in]).
  std::map<std::string, Shape> matrices;
  const std::vector<std::string> products = layer_weight_names(c);
  for (const auto& [name, shape] : io::gpt_weight_shapes(c)) {
    if (name == "wte.weight") continue;
    if (std::find(products.begin(), products.end(), name) == products.end())
      out.tensors.emplace(name, as_f32(fp.at(name, shape)));
    else matrices.emplace(name, shape);
  }
  auto activation = [&](const std::string& name, bool int8) {
    if (!int8) return;
    io::ActivationQuant a = s.input_of(name);
    GANNET_CHECK(!(s.static_activations && a.bits == 4), "quantize: static activation scales are int8 only ('", name,
                 "' has int4 inputs)");
    if (s.static_activations) {
      auto it = act_max.find(name);
      GANNET_CHECK(it != act_max.end(), "quantize: no calibration statistics for the input of '", name, "'");
      a.static_scale = static_scale_from_max_abs(it->second);
    }
    out.activations[name] = a;
  };
  for (const auto& [name, shape] : matrices) {
    const LinearQuant& lq = s.for_layer_weight(name);
    if (!lq.weight) {
      out.tensors.emplace(name, as_f32(fp.at(name, shape)));
      continue;
    }
    const Tensor w = as_f32(fp.at(name, shape));
    const int64_t in = shape.back();
    out.quantized.emplace(name, quantize_weights(w.view({w.numel() / in, in}), *lq.weight));
    activation(name, lq.int8_activations);
  }
  const Shape wte_shape = {c.vocab_size, c.n_embd};
  const Tensor wte = as_f32(fp.at("wte.weight", wte_shape));
  if (s.embedding) out.quantized.emplace("wte.weight", quantize_weights(wte, *s.embedding));
  else out.tensors.emplace("wte.weight", wte);
  const bool same = (!s.embedding && !s.lm_head) ||
                    (s.embedding && s.lm_head && s.embedding->describe() == s.lm_head->describe());
  const std::string head = same ? "wte.weight" : "lm_head.weight";
  // A head stored apart may come from its own float weights (LKD distils it; see compress/lkd.h).
  if (!same) {
    auto own = fp.tensors.find("lm_head.weight");
    out.quantized.emplace(head, quantize_weights(own != fp.tensors.end() ? as_f32(own->second) : wte, *s.lm_head));
  }
  if (s.lm_head) activation(head, s.lm_head_int8_activations);
  return out;
}

}  // namespace gannet::compress
