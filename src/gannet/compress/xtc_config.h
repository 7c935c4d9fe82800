// XTC's compression settings (`gannet compress --config FILE`, a training config with "task":
// "xtc"), with DeepSpeed's compression_training keys where they exist:
//
// "compression_training": {
//   "weight_quantization": {
//     "shared_parameters": {"enabled": true, "quantization_type": "symmetric", "group_size": 0,
//                           "schedule_offset": 0, "quantize_weight_in_forward": true},
//     "different_groups": {"wq1": {"params": {"start_bits": 1, "target_bits": 1},
//                                  "modules": ["attn", "mlp", "embedding"]}}},
//   "activation_quantization": {
//     "shared_parameters": {"enabled": true, "quantization_type": "symmetric",
//                           "range_calibration": "dynamic"},
//     "different_groups": {"aq1": {"params": {"bits": 8}, "modules": ["attn", "mlp"]}}},
//   "layer_reduction": {"enabled": true, "keep_number_layer": 3, "module_name_prefix": "h",
//                       "teacher_layer": [1, 3, 5],
//                       "other_module_name": ["wte", "wpe", "ln_f", "classifier"]}},
// "distillation": {"logits": 1.0, "hidden": 1.0, "attention": 1.0, "temperature": 1.0,
//                  "two_stage": {"enabled": false, "first_steps": 0}}
//
// target_bits 1 is binary (sign, a scale per row or group_size columns), 2 ternary (TWN's
// threshold rule): compress/low_bit_quantizer.h. The packed encoder runs every block product
// low-bit on int8 token-wise activations, so the weight groups must cover every product ("attn"
// and "mlp", or "*") with one bit width, and activation quantization must be enabled (int8,
// dynamic). "embedding" quantizes the token and position tables too (a scale per row: one token's
// vector). Quantization is trained in (straight-through estimators) from step 0: bit schedules
// (start_bits != target_bits, quantization_period, schedule_offset) are errors.
//
// layer_reduction: the student keeps keep_number_layer blocks, block j initialised from the
// teacher's block teacher_layer[j] (module_name_prefix is the blocks' name, "h" in gannet); the
// modules of other_module_name are copied from the teacher, the rest start from random weights.
//
// distillation (gannet's block; XTC/TinyBERT's losses): logits = soft cross-entropy against the
// teacher's class distribution at `temperature`; hidden = MSE of the embedding output and of each
// block's output against the teacher's (student block j against teacher block teacher_layer[j]);
// attention = MSE of each block's attention scores (before the softmax, 0 at padding keys). The
// weights multiply the terms (0 drops one). two_stage: the first first_steps steps train the
// intermediate terms only (hidden, attention), the rest the logits term only (TinyBERT's recipe;
// XTC's single stage trains all at once).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gannet/compress/low_bit_quantizer.h"
#include "gannet/io/json_config.h"

namespace gannet::compress {

struct LayerReduction {
  bool enabled = false;
  int64_t keep = 0;                     // keep_number_layer
  std::vector<int64_t> teacher_layers;  // teacher_layer, one per kept block, ascending
  std::vector<std::string> copied;      // other_module_name
};

struct DistillWeights {
  float logits = 1.f, hidden = 1.f, attention = 1.f;
  float temperature = 1.f;
  bool two_stage = false;
  int64_t first_steps = 0;  // two_stage: steps of intermediate-layer distillation first
};

struct XtcConfig {
  LowBitSpec weights;                   // every block product
  std::vector<std::string> weight_modules;  // the weight groups' module patterns
  bool embeddings = false;              // wte and wpe too (scales per row)
  LayerReduction layers;
  DistillWeights distill;

  LowBitSpec embedding_spec() const { return {weights.bits, 0}; }
  std::string scheme() const { return weights.bits == 1 ? "w1a8" : "w2a8"; }
  // e.g. "binary per-row weights + embeddings, int8 activations, 3 of the teacher's layers (1, 3, 5)"
  std::string describe() const;
};

// From the config's root object `doc`, read through `root` (its "compression_training" and
// "distillation" blocks); `steps` (train_steps) bounds two_stage.first_steps. Throws one line
// naming the key on anything unsupported.
XtcConfig read_xtc_config(const nlohmann::json& doc, const io::JsonReader& root, int64_t steps);

// The parts XTC's and NxMiFormer's configs share: the "distillation" block (`steps` bounds
// two_stage.first_steps), and compression_training.activation_quantization (`ct`, its JSON
// `ct_section`), which must be enabled, symmetric int8 and dynamic (token-wise).
DistillWeights read_distillation(const io::JsonReader& d, int64_t steps, const DistillWeights& defaults = {});
void read_int8_activations(const nlohmann::json& ct_section, const io::JsonReader& ct);
// The same section where int4 inputs are allowed (task nxm: W4A4): each group's bits (8 or 4) and
// modules; quantization_type "asymmetric" (a zero point per token) only when every group is int4.
struct ActivationGroups {
  bool asymmetric = false;
  struct Group {
    int bits = 8;
    std::vector<std::string> modules;
  };
  std::vector<Group> groups;
};
ActivationGroups read_activation_groups(const nlohmann::json& ct_section, const io::JsonReader& ct, bool allow_int4);

// Throws unless the weight groups' modules cover every product of a student of n_layer blocks.
void check_product_coverage(const XtcConfig& c, int64_t n_layer);

// The teacher layer each student block starts from (and is distilled against): teacher_layers, or
// 0..n-1 without layer reduction. Throws when the teacher has too few layers.
std::vector<int64_t> student_layer_map(const XtcConfig& c, int64_t teacher_layers);
std::vector<int64_t> student_layer_map(const LayerReduction& layers, int64_t teacher_layers);
// compression_training.layer_reduction (XTC's and NxMiFormer's): disabled when "enabled" is false.
LayerReduction read_layer_reduction(const io::JsonReader& lr);

}  // namespace gannet::compress
