#include "gannet/compress/nm_config.h"

#include <cmath>

#include "gannet/compress/quant_config.h"
#include "gannet/compress/quant_scheme.h"
#include "gannet/compress/simulated_quant.h"
#include "gannet/core/error.h"

namespace gannet::compress {

namespace {
using nlohmann::json;

PruneMethod parse_method(const std::string& m, const std::string& context) {
  if (m == "l1") return PruneMethod::l1;
  if (m == "gradual") return PruneMethod::gradual;
  if (m == "admm") return PruneMethod::admm;
  fail(str(context, ".method '", m, "' is not supported (l1: one-shot magnitude, gradual: gradual magnitude, ",
           "admm)"));
}

void read_schedule(const io::JsonReader& sh, int64_t steps, NmConfig& c) {
  GANNET_CHECK(sh.get_bool("enabled", false), sh.context(), ".enabled is not true: NxMiFormer prunes the weights");
  c.method = parse_method(sh.get_string("method", "admm"), sh.context());
  c.offset = sh.get_int<int64_t>("schedule_offset", 0, 0);
  c.offset_end = sh.get_int<int64_t>("schedule_offset_end", c.method == PruneMethod::l1 ? c.offset : steps / 2, 0);
  c.stride = sh.get_int<int64_t>("schedule_offset_stride", 10, 1);
  c.rho = sh.get_float("admm_rho", c.rho, NumberRange::above(0));
  c.rho_growth = sh.get_float("admm_rho_growth", c.rho_growth, NumberRange::at_least(1));
  const std::string penalty = sh.get_string("admm_penalty", "loss");
  GANNET_CHECK(penalty == "loss" || penalty == "proximal", sh.context(), ".admm_penalty: unknown value \"", penalty,
               "\" (loss or proximal)");
  c.penalty = penalty == "proximal" ? AdmmPenalty::proximal : AdmmPenalty::loss;
  const std::string forward = sh.get_string("admm_forward", "dense");
  GANNET_CHECK(forward == "dense" || forward == "projected", sh.context(), ".admm_forward: unknown value \"", forward,
               "\" (dense or projected)");
  c.forward = forward == "projected" ? AdmmForward::projected : AdmmForward::dense;
  GANNET_CHECK(!sh.has("block_pattern"), sh.context(),
               ".block_pattern (DeepSpeed's structured blocks) is not supported: N:M patterns are set by the groups' "
               "nm_pattern");
  GANNET_CHECK(!sh.has("dense_ratio") && !sh.has("excluded_modules"), sh.context(),
               ": dense_ratio and excluded_modules belong in the groups here (each group's params and modules)");
  if (c.method != PruneMethod::admm) {
    for (const char* key : {"admm_rho", "admm_rho_growth", "admm_penalty", "admm_forward"})
      GANNET_CHECK(!sh.has(key), sh.context(), ".", key, " is for method admm, not ", c.method_name());
  }
  if (c.method == PruneMethod::l1) {
    GANNET_CHECK(!sh.has("schedule_offset_stride"), sh.context(),
                 ".schedule_offset_stride: method l1 prunes once, at schedule_offset ", c.offset);
    GANNET_CHECK(c.offset_end == c.offset, sh.context(), ".schedule_offset_end ", c.offset_end,
                 ": method l1 prunes once, at schedule_offset ", c.offset);
  } else {
    GANNET_CHECK(c.offset_end > c.offset, sh.context(), ".schedule_offset_end ", c.offset_end,
                 " must be after schedule_offset ", c.offset, " for method ", c.method_name());
  }
  GANNET_CHECK(c.offset_end < steps, sh.context(), ": the masks are fixed at step ", c.offset_end,
               ", which leaves no fine-tuning steps (train_steps ", steps, ")");
}

void read_search(const io::JsonReader& r, NmConfig& c) {
  c.search.enabled = r.get_bool("enabled", false);
  c.search.budget_ratio = r.get_double("budget_ratio", c.search.budget_ratio, NumberRange::above(1));
  c.search.choices = r.get_string_list(
      "choices", {"dense int8", "dense int4", "2:4 int8", "2:4 int4", "1:4 int8", "1:4 int4"});
  GANNET_CHECK(!c.search.choices.empty(), r.context(), ".choices: list at least one");
  c.search.calibration_windows = r.get_int<int64_t>("calibration_windows", c.search.calibration_windows, 1, 1 << 16);
}

void read_sparse_groups(const json& section, const io::JsonReader& sp, NmConfig& c) {
  if (c.search.enabled) {
    GANNET_CHECK(!sp.has("different_groups"), sp.context(),
                 ".different_groups: the search picks each product's pattern (remove the groups, or disable search)");
    return;
  }
  io::JsonReader groups = sp.child("different_groups");
  for (const std::string& g : different_group_names(section, sp.context())) {
    io::JsonReader group = groups.child(g);
    io::JsonReader params = group.child("params");
    GANNET_CHECK(params.has("nm_pattern"), params.context(), ": no nm_pattern (e.g. \"2:4\")");
    NmConfig::SparseGroup s;
    s.pattern = NmPattern::parse(params.get_string("nm_pattern", ""), params.context() + ".nm_pattern");
    if (params.has("dense_ratio")) {
      const double r = params.get_double("dense_ratio", 0, NumberRange::left_open(0, 1));
      GANNET_CHECK(std::fabs(r - s.pattern.density()) < 1e-9, params.context(), ".dense_ratio ", r,
                   " differs from nm_pattern ", s.pattern.describe(), "'s ", s.pattern.density());
    }
    const ModuleTargets t = module_targets(group, group.context());
    GANNET_CHECK(!t.embedding && !t.lm_head, group.context(), ".modules: only block products are pruned");
    s.modules = t.patterns;
    c.sparse_groups.push_back(s);
  }
  GANNET_CHECK(!c.sparse_groups.empty(), sp.context(), ": no different_groups");
}

void read_quant(const json& section, const io::JsonReader& wq, NmConfig& c) {
  io::JsonReader ws = wq.child("shared_parameters");
  GANNET_CHECK(ws.get_bool("enabled", false), ws.context(), ".enabled is not true: the packed form holds int8 or ",
               "int4 weights");
  const std::string type = ws.get_string("quantization_type", "symmetric");
  GANNET_CHECK(type == "symmetric", ws.context(), ".quantization_type '", type,
               "' is not supported: N:M sparse weights are symmetric");
  const std::string rounding = ws.get_string("rounding", "nearest");
  GANNET_CHECK(rounding == "nearest", ws.context(), ".rounding '", rounding, "' is not supported (nearest)");
  GANNET_CHECK(ws.get_int<int64_t>("schedule_offset", 0) == 0, ws.context(),
               ".schedule_offset: quantization is trained in from the first step");
  GANNET_CHECK(ws.get_bool("quantize_weight_in_forward", true), ws.context(),
               ".quantize_weight_in_forward false is not supported: gannet quantizes in the forward pass");
  c.quant_group_size = ws.get_int<int64_t>("group_size", c.quant_group_size, 0);
  if (c.search.enabled) {
    GANNET_CHECK(!wq.has("different_groups"), wq.context(),
                 ".different_groups: the search picks each product's bits (remove the groups, or disable search)");
    return;
  }
  io::JsonReader groups = wq.child("different_groups");
  for (const std::string& g : different_group_names(section, wq.context())) {
    io::JsonReader group = groups.child(g);
    io::JsonReader params = group.child("params");
    const int64_t bits = params.get_int<int64_t>("target_bits", 0);
    GANNET_CHECK(bits == 8 || bits == 4, params.context(), ".target_bits ", bits, " is not supported (8 or 4)");
    GANNET_CHECK(params.get_int<int64_t>("start_bits", bits) == bits, params.context(),
                 ".start_bits differs from target_bits: bit schedules are not supported");
    GANNET_CHECK(params.get_int<int64_t>("quantization_period", 0) == 0, params.context(),
                 ".quantization_period: bit schedules are not supported");
    const ModuleTargets t = module_targets(group, group.context());
    GANNET_CHECK(!t.embedding && !t.lm_head, group.context(), ".modules: the embeddings stay f32 in task nxm");
    c.quant_groups.push_back({(int)bits, t.patterns});
  }
  GANNET_CHECK(!c.quant_groups.empty(), wq.context(), ": no different_groups");
}

bool names(const std::vector<std::string>& modules, const std::string& weight) {
  for (const std::string& m : modules)
    if (ProductRule{m, {}}.matches(weight)) return true;
  return false;
}
}  // namespace

std::string NmProductForm::describe() const {
  return str(pattern ? pattern->describe() : std::string("dense"), " int", quant.bits,
             quant.group == 0 ? std::string(" per-row") : str(" g", quant.group),
             input.bits == 8 ? std::string() : str(" / a", input.bits, input.asymmetric ? " asym" : ""));
}

io::ActivationQuant NmConfig::input(const std::string& weight) const {
  io::ActivationQuant a{true};
  if (inputs.groups.empty()) return a;  // a config built in code: int8 everywhere
  int hits = 0;
  for (const ActivationGroups::Group& g : inputs.groups)
    if (names(g.modules, weight)) a.bits = g.bits, a.asymmetric = inputs.asymmetric, ++hits;
  GANNET_CHECK(hits == 1, "compression_training.activation_quantization: ", weight, " is named by ", hits,
               " groups (every block product needs exactly one: the packed encoder runs integer inputs)");
  return a;
}

std::vector<std::array<NmProductForm, 4>> NmConfig::resolve(int64_t n_layer) const {
  if (!searched.empty()) {
    GANNET_CHECK((int64_t)searched.size() == n_layer, "N:M search: forms for ", searched.size(), " layers, the model has ",
                 n_layer);
    std::vector<std::array<NmProductForm, 4>> out = searched;
    for (int64_t l = 0; l < n_layer; ++l)
      for (int p = 0; p < 4; ++p)
        out[(size_t)l][(size_t)p].input = input(str("h.", l, ".", kBlockProducts[(size_t)p], ".weight"));
    return out;
  }
  GANNET_CHECK(!search.enabled, "compression_training.sparse_pruning.search: the forms are picked by gannet compress, "
               "which runs the search before training (gannet train cannot)");
  std::vector<std::array<NmProductForm, 4>> out((size_t)n_layer);
  for (int64_t l = 0; l < n_layer; ++l)
    for (int p = 0; p < 4; ++p) {
      const std::string w = str("h.", l, ".", kBlockProducts[(size_t)p], ".weight");
      NmProductForm& f = out[(size_t)l][(size_t)p];
      int hits = 0;
      for (const SparseGroup& g : sparse_groups)
        if (names(g.modules, w)) f.pattern = g.pattern, ++hits;
      GANNET_CHECK(hits <= 1, "compression_training.sparse_pruning: ", w, " is named by ", hits, " groups");
      hits = 0;
      for (const QuantGroup& g : quant_groups)
        if (names(g.modules, w)) f.quant.bits = g.bits, ++hits;
      GANNET_CHECK(hits == 1, "compression_training.weight_quantization: ", w, " is named by ", hits,
                   " groups (every block product needs exactly one: the packed encoder runs int8 inputs)");
      f.quant.group = quant_group_size;
      f.quant.symmetric = true;
      f.quant.validate();
      f.input = input(w);
    }
  return out;
}

const char* NmConfig::method_name() const {
  return method == PruneMethod::l1 ? "l1" : method == PruneMethod::gradual ? "gradual" : "admm";
}

std::string NmConfig::describe() const {
  if (sparse_groups.empty() && !search.enabled) return "no pruning (every block product dense)";
  switch (method) {
    case PruneMethod::l1:
      return str("one-shot magnitude pruning at step ", offset);
    case PruneMethod::gradual:
      return str("gradual magnitude pruning from step ", offset, " to ", offset_end, " every ", stride, " steps");
    case PruneMethod::admm:
      break;
  }
  return str("ADMM from step ", offset, " (rho ", rho, " x ", rho_growth, " every ", stride, " steps, ",
             penalty == AdmmPenalty::proximal ? "proximal" : "in the loss",
             forward == AdmmForward::projected ? ", projected forward" : "", "), projected at step ", offset_end);
}

NmConfig read_nm_config(const nlohmann::json& doc, const io::JsonReader& root, int64_t steps, bool language_model) {
  GANNET_CHECK(doc.contains("compression_training"), root.context(), ": task \"nxm\" needs a compression_training block");
  const json& ctj = doc.at("compression_training");
  io::JsonReader ct = root.child("compression_training");
  GANNET_CHECK(ctj.contains("weight_quantization"), ct.context(), ": no weight_quantization");
  NmConfig c;
  if (ctj.contains("sparse_pruning")) {
    io::JsonReader sp = ct.child("sparse_pruning");
    read_schedule(sp.child("shared_parameters"), steps, c);
    read_search(sp.child("search"), c);
    read_sparse_groups(ctj.at("sparse_pruning"), sp, c);
  } else {  // quantization only (e.g. W4A4): every product dense, no pruning schedule
    c.method = PruneMethod::l1;
  }
  read_quant(ctj.at("weight_quantization"), ct.child("weight_quantization"), c);
  c.inputs = read_activation_groups(ctj, ct, true);
  c.layers = read_layer_reduction(ct.child("layer_reduction"));
  GANNET_CHECK(!c.layers.enabled || !language_model, ct.context(),
               ".layer_reduction: task \"nxm_lm\" keeps the GPT's blocks (layer reduction is for encoders)");
  GANNET_CHECK(!c.layers.enabled || !c.search.enabled, ct.context(),
               ".layer_reduction with sparse_pruning.search is not supported (the search measures the teacher's "
               "blocks)");
  DistillWeights defaults;
  if (language_model) defaults.hidden = defaults.attention = 0.f;
  c.distill = read_distillation(root.child("distillation"), steps, defaults);
  GANNET_CHECK(!language_model || (c.distill.hidden == 0 && c.distill.attention == 0 && !c.distill.two_stage),
               "distillation: task \"nxm_lm\" distils the logits only (hidden and attention 0, no two_stage)");
  return c;
}

}  // namespace gannet::compress
