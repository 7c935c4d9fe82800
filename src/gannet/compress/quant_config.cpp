#include "gannet/compress/quant_config.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gannet/core/error.h"
#include "gannet/io/json_config.h"

namespace gannet::compress {

namespace {
using nlohmann::json;

// Checks a DeepSpeed key that gannet supports only at its post-training value.
void expect_int(const io::JsonReader& r, const std::string& key, int64_t only, const std::string& why) {
  const int64_t v = r.get_int<int64_t>(key, only);
  GANNET_CHECK(v == only, r.context(), ".", key, " = ", v, " is not supported: ", why);
}

}  // namespace

std::vector<std::string> different_group_names(const json& section, const std::string& context) {
  std::vector<std::string> names;
  if (!section.contains("different_groups")) return names;
  const json& g = section.at("different_groups");
  GANNET_CHECK(g.is_object(), context, ".different_groups: expected an object of groups");
  for (auto it = g.begin(); it != g.end(); ++it) names.push_back(it.key());
  return names;
}

ModuleTargets module_targets(const io::JsonReader& group, const std::string& context) {
  const std::vector<std::string> modules = group.get_string_list("modules", {});
  GANNET_CHECK(!modules.empty(), context, ".modules: list the modules the group applies to");
  ModuleTargets t;
  for (const std::string& m : modules) {
    GANNET_CHECK(!m.empty(), context, ".modules: empty module name");
    if (m == "embedding") t.embedding = true;
    else if (m == "lm_head") t.lm_head = true;
    else t.patterns.push_back(m);
  }
  return t;
}

QuantScheme scheme_from_config(const std::string& text, const std::string& path) {
  const json doc = io::parse_json_text(text, path);
  io::JsonReader root(doc, "");
  io::JsonReader ct = root.child("compression_training");
  GANNET_CHECK(doc.contains("compression_training"), path, ": no compression_training block");
  const json& ctj = doc.at("compression_training");
  QuantScheme s;
  s.name = std::filesystem::path(path).stem().string();

  // Weights.
  io::JsonReader wq = ct.child("weight_quantization");
  GANNET_CHECK(ctj.contains("weight_quantization"), path, ": compression_training has no weight_quantization");
  io::JsonReader ws = wq.child("shared_parameters");
  GANNET_CHECK(ws.get_bool("enabled", false), path, ": weight_quantization.shared_parameters.enabled is not true");
  WeightQuantSpec base;
  const std::string type = ws.get_string("quantization_type", "symmetric");
  GANNET_CHECK(type == "symmetric" || type == "asymmetric", ws.context(), ".quantization_type '", type,
               "' (symmetric, asymmetric)");
  base.symmetric = type == "symmetric";
  const std::string rounding = ws.get_string("rounding", "nearest");
  GANNET_CHECK(rounding == "nearest" || rounding == "stochastic", ws.context(), ".rounding '", rounding,
               "' (nearest, stochastic)");
  base.stochastic = rounding == "stochastic";
  GANNET_CHECK(!ws.has("quantize_groups"), ws.context(),
               ".quantize_groups (DeepSpeed's groups per whole matrix) is not supported: gannet groups input "
               "columns, set group_size (32, 64, 128, or 0 for one scale per row)");
  base.group = ws.get_int<int64_t>("group_size", 64, 0);  // base.validate() checks the multiple
  expect_int(ws, "schedule_offset", 0, "gannet quantizes after training (no schedule)");
  ws.get_bool("quantize_verbose", false);
  ws.get_bool("quantizer_kernel", false);  // gannet always runs its own integer kernels
  GANNET_CHECK(!ws.get_bool("quantize_weight_in_forward", false), ws.context(),
               ".quantize_weight_in_forward is a training option; gannet stores the quantized weights");
  {
    io::JsonReader mixed = ws.child("fp16_mixed_quantize");
    GANNET_CHECK(!mixed.get_bool("enabled", false), mixed.context(), ".enabled: mixed fp16 quantization is a training option");
    mixed.get_double("quantize_change_ratio", 0.0, NumberRange::closed(0, 1));
  }
  base.validate();
  io::JsonReader wgroups = wq.child("different_groups");
  const std::vector<std::string> wnames = different_group_names(ctj.at("weight_quantization"), wq.context());
  GANNET_CHECK(!wnames.empty(), path, ": weight_quantization has no different_groups");
  for (const std::string& g : wnames) {
    io::JsonReader group = wgroups.child(g);
    io::JsonReader params = group.child("params");
    const int64_t bits = params.get_int<int64_t>("target_bits", 0);  // 8 or 4, checked below
    const int64_t start = params.get_int<int64_t>("start_bits", bits);
    GANNET_CHECK(bits == 8 || bits == 4, params.context(), ".target_bits ", bits, " is not supported (8, 4)");
    GANNET_CHECK(start == bits, params.context(), ".start_bits ", start, " differs from target_bits ", bits,
                 ": bit schedules are for quantization-aware training; gannet quantizes after training");
    expect_int(params, "quantization_period", 0, "gannet quantizes after training (no schedule)");
    group.get_string_list("related_modules", {});
    WeightQuantSpec spec = base;
    spec.bits = (int)bits;
    const ModuleTargets t = module_targets(group, group.context());
    for (const std::string& p : t.patterns) s.rules.push_back({p, {spec, false}});
    if (t.embedding) s.embedding = spec;
    if (t.lm_head) s.lm_head = spec;
  }

  // Activations.
  io::JsonReader aq = ct.child("activation_quantization");
  io::JsonReader as = aq.child("shared_parameters");
  if (ctj.contains("activation_quantization") && as.get_bool("enabled", false)) {
    const std::string atype = as.get_string("quantization_type", "symmetric");
    GANNET_CHECK(atype == "symmetric" || atype == "asymmetric", as.context(), ".quantization_type '", atype,
                 "' is not supported (symmetric; asymmetric for int4 inputs)");
    s.asymmetric_activations = atype == "asymmetric";
    const std::string range = as.get_string("range_calibration", "dynamic");
    GANNET_CHECK(range == "dynamic" || range == "static", as.context(), ".range_calibration '", range,
                 "' (dynamic: one scale per token; static: calibrated per product)");
    s.static_activations = range == "static";
    expect_int(as, "schedule_offset", 0, "gannet quantizes after training (no schedule)");
    io::JsonReader agroups = aq.child("different_groups");
    for (const std::string& g : different_group_names(ctj.at("activation_quantization"), aq.context())) {
      io::JsonReader group = agroups.child(g);
      io::JsonReader params = group.child("params");
      const int64_t bits = params.get_int<int64_t>("bits", 8);  // 8 or 4, checked below
      GANNET_CHECK(bits == 8 || bits == 4, params.context(), ".bits ", bits, " is not supported (8 or 4)");
      GANNET_CHECK(bits == 4 || !s.asymmetric_activations, params.context(), ".bits ", bits,
                   ": asymmetric activations are int4 only");
      GANNET_CHECK(bits == 8 || !s.static_activations, params.context(),
                   ".bits 4: static activation scales are int8 only (int4 inputs are token-wise)");
      const ModuleTargets t = module_targets(group, group.context());
      GANNET_CHECK(!t.embedding, group.context(), ".modules: the embedding has no input to quantize");
      GANNET_CHECK(!(t.lm_head && bits == 4), group.context(), ".modules: the LM head's inputs are int8 or f32");
      if (t.lm_head) s.lm_head_int8_activations = true;
      for (const std::string& p : t.patterns) {
        s.int8_activation_patterns.push_back(p);
        if (bits == 4) s.int4_activation_patterns.push_back(p);
      }
    }
  } else {
    as.get_string("quantization_type", "");
    as.get_string("range_calibration", "");
    as.get_int<int64_t>("schedule_offset", 0);
    aq.child("different_groups");
  }
  GANNET_CHECK(!s.embedding || s.lm_head, path, ": an f32 LM head with a quantized embedding is not supported (they "
               "share one tensor); name lm_head in a weight group too");
  GANNET_CHECK(!s.lm_head_int8_activations || s.lm_head, path, ": int8 activations for an f32 LM head");
  root.finish();
  return s;
}

QuantScheme read_scheme_config(const std::string& path) {
  std::ifstream f(path);
  GANNET_CHECK(f.good(), "cannot read quantization config ", path);
  std::stringstream ss;
  ss << f.rdbuf();
  return scheme_from_config(ss.str(), path);
}

}  // namespace gannet::compress
