// NxMiFormer's compression settings (task "nxm": `gannet compress --config FILE`), with DeepSpeed's
// compression_training names where they exist:
//
// "compression_training": {
//   "sparse_pruning": {
//     "shared_parameters": {"enabled": true, "method": "admm", "schedule_offset": 0,
//                           "schedule_offset_end": 200, "schedule_offset_stride": 10,
//                           "admm_rho": 0.001, "admm_rho_growth": 1.2, "admm_penalty": "loss"},
//     "different_groups": {"sp1": {"params": {"nm_pattern": "2:4", "dense_ratio": 0.5},
//                                  "modules": ["attn", "mlp"]}}},
//   "weight_quantization": {
//     "shared_parameters": {"enabled": true, "quantization_type": "symmetric", "group_size": 64},
//     "different_groups": {"wq1": {"params": {"start_bits": 8, "target_bits": 8}, "modules": ["*"]}}},
//   "activation_quantization": {... enabled, symmetric, dynamic, int8 (as XTC's)}},
// "layer_reduction": {... as XTC's (compress/xtc_config.h)}: a student of fewer blocks, each
//   initialised from the teacher block it is distilled against (task nxm only; not with the search),
// "distillation": {... as XTC's (compress/xtc_config.h)}
//
// Without sparse_pruning every product is dense: quantization-aware training with distillation
// alone (W8A8, W4A4 and their mixes). Each block product (h.<i>.attn.c_attn, ... as module
// substrings) is N:M sparse when one sparse_pruning group names it (nm_pattern, gannet's key: n kept of every m input columns;
// DeepSpeed's dense_ratio, when given, must equal n / m), else dense; and it is quantized to the
// bits of the weight_quantization group that names it (8 or 4, symmetric, group_size columns per
// scale: 0 for one per row), which every product needs (the packed engine runs int8 inputs). A
// product named by two groups of one section is an error.
//
// method (DeepSpeed's key; its values "topk" and "snip_momentum" are not supported):
//   "l1"      one-shot magnitude pruning at step schedule_offset (DeepSpeed's meaning of l1): the
//             N:M mask of |W| is fixed there and the masked weights fine-tuned;
//   "gradual" gradual magnitude pruning (Zhu and Gupta's cubic schedule): from schedule_offset to
//             schedule_offset_end, every schedule_offset_stride steps, each run of m keeps its k
//             largest, k going from m down to n; then fixed;
//   "admm"    ADMM (Zhang et al.; NxMiFormer): from schedule_offset, the loss adds
//             rho / 2 ||W - Z + U||^2 per sparse product, with Z the N:M projection of W + U and U
//             += W - Z every schedule_offset_stride steps, rho = admm_rho x admm_rho_growth^(updates
//             so far); at schedule_offset_end the weights are projected (the mask of |W|) and the
//             masked weights fine-tuned.
//             admm_penalty (gannet's key) says how the W-step takes the quadratic term: "loss"
//             (the default) adds it to the loss, so that the optimizer sees its gradient beside the
//             task's (AdamW then scales it like any gradient: the pull moves W about lr per step
//             whatever rho is); "proximal" takes it by its proximal operator after the optimizer's
//             step, W <- (W + rho (Z - U)) / (1 + rho) once per step (proximal gradient on the
//             augmented Lagrangian): each step then closes a share rho / (1 + rho) of the distance
//             to Z - U, and admm_rho is that per-step share's rate (e.g. 0.02), not a loss weight.
//             admm_forward (gannet's key) says what the forward pass uses in ADMM's phase:
//             "dense" (the default) the latent W, so that the loss never sees the pruning until the
//             projection; "projected" the N:M projection of W (the n largest |w| of each run, a mask
//             remade every step), with gradients straight through to all of W, as the quantizer's:
//             the loss is then the sparse model's throughout, ADMM's pull settles the mask, and
//             the projection at schedule_offset_end changes nothing in the forward.
//             The admm_* keys under another method, and schedule_offset_stride under l1, are errors.
// Quantization is trained in with straight-through estimators from step 0 in every method, and
// the student distils from the teacher throughout.
//
// "search" (gannet's block in sparse_pruning; compress/nm_search.h): {"enabled": true,
// "budget_ratio": 10, "choices": ["dense int8", "dense int4", "2:4 int8", "2:4 int4", "1:4 int8",
// "1:4 int4"], "calibration_windows": 64}: `gannet compress` picks each product's form so that the
// block products' packed bytes are at most their f32 bytes / budget_ratio, then trains that
// configuration; the two sections' different_groups are then left out (the search sets them).
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gannet/compress/quantizer.h"
#include "gannet/compress/xtc_config.h"
#include "gannet/core/nm_pattern.h"
#include "gannet/io/json_config.h"

namespace gannet::compress {

enum class PruneMethod { l1, gradual, admm };
// How ADMM's W-step takes its quadratic term rho / 2 ||W - Z + U||^2 (admm_penalty).
enum class AdmmPenalty { loss, proximal };
// What the forward pass sees of a sparse product in ADMM's phase (admm_forward).
enum class AdmmForward { dense, projected };

// One block product's compressed form.
struct NmProductForm {
  std::optional<NmPattern> pattern;  // nullopt: dense
  WeightQuantSpec quant;             // symmetric, 8 or 4 bits
  io::ActivationQuant input{true};   // token-wise int8 or int4 (W4A4) inputs
  std::string describe() const;      // e.g. "2:4 int8 g64", "dense int4 g64 / a4"
};

struct NmConfig {
  PruneMethod method = PruneMethod::admm;
  int64_t offset = 0, offset_end = 0, stride = 1;  // schedule_offset, _end, _stride
  float rho = 1e-3f, rho_growth = 1.f;             // admm_rho, admm_rho_growth
  AdmmPenalty penalty = AdmmPenalty::loss;         // admm_penalty
  AdmmForward forward = AdmmForward::dense;        // admm_forward
  struct SparseGroup {
    NmPattern pattern;
    std::vector<std::string> modules;
  };
  struct QuantGroup {
    int bits = 8;
    std::vector<std::string> modules;
  };
  std::vector<SparseGroup> sparse_groups;
  std::vector<QuantGroup> quant_groups;
  int64_t quant_group_size = 64;  // weight_quantization group_size
  ActivationGroups inputs;        // activation_quantization
  LayerReduction layers;          // layer_reduction (XTC's block): a student of fewer blocks
  DistillWeights distill;
  struct Search {
    bool enabled = false;
    double budget_ratio = 10;
    std::vector<std::string> choices;  // e.g. "2:4 int8"
    int64_t calibration_windows = 64;
  } search;
  // The forms a search picked ([layer][product]); when set, resolve() returns them.
  std::vector<std::array<NmProductForm, 4>> searched;

  // Every product of an encoder of n_layer blocks: [layer][product] in kBlockProducts' order.
  // Throws one line naming a product that no weight group (or two groups of a section) names.
  std::vector<std::array<NmProductForm, 4>> resolve(int64_t n_layer) const;
  // The input quantization of the block product weight `weight` (e.g. "h.0.mlp.c_fc.weight"). Throws
  // one line unless exactly one activation group names it.
  io::ActivationQuant input(const std::string& weight) const;
  const char* method_name() const;
  std::string describe() const;  // the method and its schedule
};

// From the config's root object `doc`, read through `root`; `steps` (train_steps) bounds the
// schedule (the masks must be fixed before the last step, so that fine-tuning follows).
// language_model (task "nxm_lm"): distillation is of the logits only (hidden and attention default
// to 0 and must stay 0; no two stages).
NmConfig read_nm_config(const nlohmann::json& doc, const io::JsonReader& root, int64_t steps,
                        bool language_model = false);

}  // namespace gannet::compress
