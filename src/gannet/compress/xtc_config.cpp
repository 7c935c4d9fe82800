#include "gannet/compress/xtc_config.h"

#include <algorithm>

#include "gannet/compress/quant_config.h"
#include "gannet/compress/quant_scheme.h"
#include "gannet/core/error.h"

namespace gannet::compress {

namespace {
using nlohmann::json;

constexpr const char* kProducts[] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"};
constexpr const char* kCopyable[] = {"wte", "wpe", "ln_f", "classifier"};

void expect_zero(const io::JsonReader& r, const std::string& key) {
  const int64_t v = r.get_int<int64_t>(key, 0);
  GANNET_CHECK(v == 0, r.context(), ".", key, " = ", v,
               " is not supported: gannet trains the quantization in from the first step (no schedule)");
}

LowBitSpec read_weight_shared(const io::JsonReader& ws) {
  GANNET_CHECK(ws.get_bool("enabled", false), ws.context(), ".enabled is not true: XTC quantizes the weights");
  const std::string type = ws.get_string("quantization_type", "symmetric");
  GANNET_CHECK(type == "symmetric", ws.context(), ".quantization_type '", type,
               "' is not supported: binary and ternary weights are symmetric");
  const std::string rounding = ws.get_string("rounding", "nearest");
  GANNET_CHECK(rounding == "nearest", ws.context(), ".rounding '", rounding,
               "' is not supported: binary and ternary weights have one rounding rule");
  GANNET_CHECK(!ws.has("quantize_groups"), ws.context(),
               ".quantize_groups (DeepSpeed's groups per whole matrix) is not supported: gannet scales each row or "
               "each group of input columns, set group_size (0 for one scale per row, or a multiple of 32)");
  LowBitSpec spec;
  spec.group = ws.get_int<int64_t>("group_size", 0, 0);
  expect_zero(ws, "schedule_offset");
  ws.get_bool("quantize_verbose", false);
  ws.get_bool("quantizer_kernel", false);  // gannet always runs its own kernels
  GANNET_CHECK(ws.get_bool("quantize_weight_in_forward", true), ws.context(),
               ".quantize_weight_in_forward false (quantizing in the optimizer step) is not supported: gannet "
               "quantizes in the forward pass, with straight-through gradients");
  io::JsonReader mixed = ws.child("fp16_mixed_quantize");
  GANNET_CHECK(!mixed.get_bool("enabled", false), mixed.context(), ".enabled: gannet trains in f32");
  mixed.get_double("quantize_change_ratio", 0.0, NumberRange::closed(0, 1));
  return spec;
}

// The weight groups: one bit width (1 or 2) for all; their module patterns and "embedding".
void read_weight_groups(const json& section, const io::JsonReader& wq, XtcConfig& c) {
  const std::vector<std::string> names = different_group_names(section, wq.context());
  GANNET_CHECK(!names.empty(), wq.context(), ": no different_groups");
  io::JsonReader groups = wq.child("different_groups");
  int bits = 0;
  for (const std::string& g : names) {
    io::JsonReader group = groups.child(g);
    io::JsonReader params = group.child("params");
    const int64_t target = params.get_int<int64_t>("target_bits", 0);
    GANNET_CHECK(target == 1 || target == 2, params.context(), ".target_bits ", target,
                 " is not an XTC width (1: binary, 2: ternary; gannet quantize does 8 and 4)");
    const int64_t start = params.get_int<int64_t>("start_bits", target);
    GANNET_CHECK(start == target, params.context(), ".start_bits ", start, " differs from target_bits ", target,
                 ": bit schedules are not supported");
    expect_zero(params, "quantization_period");
    GANNET_CHECK(bits == 0 || bits == target, params.context(), ".target_bits ", target, " differs from another ",
                 "group's ", bits, ": the packed file holds one width");
    bits = (int)target;
    group.get_string_list("related_modules", {});
    const ModuleTargets t = module_targets(group, group.context());
    GANNET_CHECK(!t.lm_head, group.context(), ".modules: an encoder has no lm_head");
    c.embeddings = c.embeddings || t.embedding;
    c.weight_modules.insert(c.weight_modules.end(), t.patterns.begin(), t.patterns.end());
  }
  GANNET_CHECK(c.embeddings, wq.context(), ".different_groups: the modules must include \"embedding\": the packed ",
               "file stores the embedding tables low-bit too");
  c.weights.bits = bits;
  c.weights.validate();
}


}  // namespace

LayerReduction read_layer_reduction(const io::JsonReader& lr) {
  LayerReduction r;
  r.enabled = lr.get_bool("enabled", false);
  if (!r.enabled) {
    lr.get_int<int64_t>("keep_number_layer", 0);
    lr.get_string("module_name_prefix", "");
    lr.get_int_list("teacher_layer", {});
    lr.get_string_list("other_module_name", {});
    return r;
  }
  r.keep = lr.get_int<int64_t>("keep_number_layer", 0, 1);
  const std::string prefix = lr.get_string("module_name_prefix", "h");
  GANNET_CHECK(prefix == "h", lr.context(), ".module_name_prefix '", prefix,
               "': gannet's blocks are named h.<i> (use \"h\")");
  r.teacher_layers = lr.get_int_list("teacher_layer", {}, 0);
  GANNET_CHECK((int64_t)r.teacher_layers.size() == r.keep, lr.context(), ".teacher_layer lists ",
               r.teacher_layers.size(), " layers for keep_number_layer ", r.keep);
  GANNET_CHECK(std::is_sorted(r.teacher_layers.begin(), r.teacher_layers.end()) &&
                   std::adjacent_find(r.teacher_layers.begin(), r.teacher_layers.end()) == r.teacher_layers.end(),
               lr.context(), ".teacher_layer must be strictly ascending");
  r.copied = lr.get_string_list("other_module_name", {"wte", "wpe", "ln_f", "classifier"});
  for (const std::string& m : r.copied)
    GANNET_CHECK(std::find(std::begin(kCopyable), std::end(kCopyable), m) != std::end(kCopyable), lr.context(),
                 ".other_module_name: '", m, "' is not a module outside the blocks (wte, wpe, ln_f, classifier)");
  return r;
}

void read_int8_activations(const json& ct_section, const io::JsonReader& ct) {
  read_activation_groups(ct_section, ct, false);
}

ActivationGroups read_activation_groups(const json& ct_section, const io::JsonReader& ct, bool allow_int4) {
  io::JsonReader aq = ct.child("activation_quantization");
  io::JsonReader as = aq.child("shared_parameters");
  GANNET_CHECK(ct_section.contains("activation_quantization") && as.get_bool("enabled", false), ct.context(),
               ".activation_quantization.shared_parameters.enabled must be true: the packed kernels take integer "
               "activations");
  ActivationGroups out;
  const std::string type = as.get_string("quantization_type", "symmetric");
  GANNET_CHECK(type == "symmetric" || (allow_int4 && type == "asymmetric"), as.context(), ".quantization_type '", type,
               "' is not supported (", allow_int4 ? "symmetric, or asymmetric for int4" : "symmetric int8", ")");
  out.asymmetric = type == "asymmetric";
  const std::string range = as.get_string("range_calibration", "dynamic");
  GANNET_CHECK(range == "dynamic", as.context(), ".range_calibration '", range,
               "' is not supported: the students' activations are quantized per token (dynamic)");
  expect_zero(as, "schedule_offset");
  io::JsonReader groups = aq.child("different_groups");
  for (const std::string& g : different_group_names(ct_section.at("activation_quantization"), aq.context())) {
    io::JsonReader group = groups.child(g);
    const int64_t bits = group.child("params").get_int<int64_t>("bits", 8);
    GANNET_CHECK(bits == 8 || (allow_int4 && bits == 4), group.context(), ".params.bits ", bits,
                 " is not supported (", allow_int4 ? "8 or 4" : "activations are int8", ")");
    GANNET_CHECK(!out.asymmetric || bits == 4, group.context(), ".params.bits ", bits,
                 ": asymmetric activations are int4 only");
    const ModuleTargets t = module_targets(group, group.context());
    GANNET_CHECK(!t.embedding && !t.lm_head, group.context(), ".modules: only block products take integer inputs");
    out.groups.push_back({(int)bits, t.patterns});
  }
  return out;
}

DistillWeights read_distillation(const io::JsonReader& d, int64_t steps, const DistillWeights& defaults) {
  DistillWeights w = defaults;
  const NumberRange weight = NumberRange::at_least(0);
  w.logits = d.get_float("logits", w.logits, weight);
  w.hidden = d.get_float("hidden", w.hidden, weight);
  w.attention = d.get_float("attention", w.attention, weight);
  w.temperature = d.get_float("temperature", w.temperature, NumberRange::above(0));
  io::JsonReader two = d.child("two_stage");
  w.two_stage = two.get_bool("enabled", false);
  w.first_steps = two.get_int<int64_t>("first_steps", steps / 2, 0, steps);
  GANNET_CHECK(!w.two_stage || (w.first_steps > 0 && w.first_steps < steps), two.context(), ".first_steps ",
               w.first_steps, " must leave steps to both stages (train_steps ", steps, ")");
  GANNET_CHECK(!w.two_stage || ((w.hidden > 0 || w.attention > 0) && w.logits > 0), two.context(),
               ": the first stage needs hidden or attention > 0 and the second logits > 0");
  GANNET_CHECK(w.logits > 0 || w.hidden > 0 || w.attention > 0, d.context(), ": every distillation weight is 0");
  return w;
}
XtcConfig read_xtc_config(const nlohmann::json& doc, const io::JsonReader& root, int64_t steps) {
  GANNET_CHECK(doc.contains("compression_training"), root.context(), ": task \"xtc\" needs a compression_training block");
  const json& ctj = doc.at("compression_training");
  io::JsonReader ct = root.child("compression_training");
  GANNET_CHECK(ctj.contains("weight_quantization"), ct.context(), ": no weight_quantization");
  io::JsonReader wq = ct.child("weight_quantization");
  XtcConfig c;
  c.weights = read_weight_shared(wq.child("shared_parameters"));
  read_weight_groups(ctj.at("weight_quantization"), wq, c);
  read_int8_activations(ctj, ct);
  c.layers = read_layer_reduction(ct.child("layer_reduction"));
  c.distill = read_distillation(root.child("distillation"), steps);
  return c;
}

void check_product_coverage(const XtcConfig& c, int64_t n_layer) {
  for (int64_t l = 0; l < n_layer; ++l)
    for (const char* p : kProducts) {
      const std::string name = str("h.", l, ".", p, ".weight");
      const bool covered = std::any_of(c.weight_modules.begin(), c.weight_modules.end(),
                                       [&](const std::string& m) { return ProductRule{m, {}}.matches(name); });
      GANNET_CHECK(covered, "compression_training.weight_quantization: no group's modules match ", name,
                   ": the packed encoder runs every block product low-bit (name \"attn\" and \"mlp\", or \"*\")");
    }
}

std::vector<int64_t> student_layer_map(const XtcConfig& c, int64_t teacher_layers) {
  return student_layer_map(c.layers, teacher_layers);
}

std::vector<int64_t> student_layer_map(const LayerReduction& layers, int64_t teacher_layers) {
  std::vector<int64_t> map;
  if (!layers.enabled) {
    for (int64_t l = 0; l < teacher_layers; ++l) map.push_back(l);
    return map;
  }
  GANNET_CHECK(layers.teacher_layers.back() < teacher_layers, "compression_training.layer_reduction.teacher_layer ",
               layers.teacher_layers.back(), " is not a layer of the teacher (", teacher_layers, " layers)");
  return layers.teacher_layers;
}

std::string XtcConfig::describe() const {
  std::string s = str(weights.describe(), " weights", embeddings ? " and embeddings" : "", ", int8 activations");
  if (layers.enabled) {
    s += str(", ", layers.keep, " of the teacher's layers (");
    for (size_t i = 0; i < layers.teacher_layers.size(); ++i) s += str(i ? ", " : "", layers.teacher_layers[i]);
    s += ")";
  }
  s += str("; distillation: logits ", distill.logits, ", hidden ", distill.hidden, ", attention ", distill.attention,
           ", T ", distill.temperature);
  if (distill.two_stage) s += str(", two stages (intermediate first for ", distill.first_steps, " steps)");
  return s;
}

}  // namespace gannet::compress
