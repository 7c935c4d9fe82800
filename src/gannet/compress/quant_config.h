// The config-file form of a quantization scheme, with DeepSpeed's compression_training keys where
// they fit (`gannet quantize --config FILE`):
//
// {"compression_training": {
//   "weight_quantization": {
//     "shared_parameters": {"enabled": true, "quantization_type": "symmetric" | "asymmetric",
//                           "rounding": "nearest" | "stochastic", "group_size": 64,
//                           "schedule_offset": 0, "quantize_verbose": false, "quantizer_kernel": false},
//     "different_groups": {"wq1": {"params": {"start_bits": 8, "target_bits": 8}, "modules": ["attn"]},
//                          "wq2": {"params": {"start_bits": 4, "target_bits": 4}, "modules": ["mlp"]}}},
//   "activation_quantization": {
//     "shared_parameters": {"enabled": true, "quantization_type": "symmetric",
//                           "range_calibration": "dynamic" | "static", "schedule_offset": 0},
//     "different_groups": {"aq1": {"params": {"bits": 8}, "modules": ["attn", "mlp"]}}}}}
//
// Modules are matched as substrings of the weight names ("attn", "mlp", "c_fc", "h.0.", "*" for
// all); "embedding" and "lm_head" name the token embedding and the LM head. MoE expert tensors
// ("h.1.moe.experts.c_fc.weight") match by their own names ("experts", "moe", "c_fc") and as the
// dense MLP they replace ("mlp": DeepSpeed's MoE layer sits in the block's mlp); the router and
// PR-MoE's coefficient are never quantized (compress/quant_scheme.h). Products no group
// names stay f32. gannet quantizes after training, so what DeepSpeed uses for quantization-aware
// training is an error here when set to anything but its post-training value: start_bits other
// than target_bits, schedule_offset or quantization_period other than 0, quantize_weight_in_forward,
// fp16_mixed_quantize. DeepSpeed's quantize_groups (groups per whole matrix) is an error that
// names group_size, gannet's groups of input columns. Activations are int8, symmetric.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gannet/compress/quant_scheme.h"
#include "gannet/io/json_config.h"

namespace gannet::compress {

// The names of the groups in a section's different_groups object (JsonReader cannot list keys);
// `context` names the section in errors.
std::vector<std::string> different_group_names(const nlohmann::json& section, const std::string& context);

// What a group's "modules" list names: "embedding", "lm_head", and substrings of weight names.
struct ModuleTargets {
  bool embedding = false, lm_head = false;
  std::vector<std::string> patterns;
};
ModuleTargets module_targets(const io::JsonReader& group, const std::string& context);

// Reads the scheme from a config file's text; `path` names it in errors.
QuantScheme scheme_from_config(const std::string& text, const std::string& path);
QuantScheme read_scheme_config(const std::string& path);

}  // namespace gannet::compress
