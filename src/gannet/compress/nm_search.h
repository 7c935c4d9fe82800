// NxMiFormer's configuration search: a form per block product (dense or N:M, int8 or int4) that
// meets a size budget with the least estimated damage.
//
// Sensitivity of product p to choice c: the mean KL divergence from the teacher's class
// distribution to that of the teacher with only p compressed as c (its weight projected and
// quantized as the packed file would hold it; every product's inputs int8), on calibration
// windows, minus the same divergence with no product compressed. Cost: the bytes p's packed
// weight takes in c (values, positions, scales). The choice per product minimises the summed
// sensitivity subject to the summed cost staying within the budget: a multiple-choice knapsack,
// solved exactly by dynamic programming over the cost rounded up to 1/4096 of the budget (so the
// result is never over it).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gannet/compress/nm_config.h"
#include "gannet/core/tensor.h"
#include "gannet/models/encoder.h"

namespace gannet::compress {

struct NmSearchTable {
  std::vector<NmProductForm> choices;
  // [layer * 4 + product][choice]
  std::vector<std::vector<double>> sensitivity;
  std::vector<std::vector<int64_t>> bytes;
  std::vector<int> picked;  // [layer * 4 + product]: an index into choices
  int64_t budget = 0;       // bytes
  int64_t f32_bytes = 0;    // the block products in f32

  int64_t picked_bytes() const;
  double picked_sensitivity() const;
  // The forms picked, [layer][product].
  std::vector<std::array<NmProductForm, 4>> forms() const;
  // One row per product: its shape, every choice's sensitivity and size, the pick marked; then the
  // totals against the budget.
  std::string describe() const;
};

// The picked forms as JSON, {"h.0.attn.c_attn": "2:4 int8", ...}, and back (`group` columns per
// scale; one-line errors naming `what` on a missing product or a bad choice).
nlohmann::json nm_forms_to_json(const std::vector<std::array<NmProductForm, 4>>& forms);
std::vector<std::array<NmProductForm, 4>> nm_forms_from_json(const nlohmann::json& doc, int64_t n_layer, int64_t group,
                                                             const std::string& what);

// "dense int8", "2:4 int4", ... with weight quantization groups of `group` columns (0: per row).
NmProductForm parse_nm_choice(const std::string& text, int64_t group, const std::string& what);

// Measures every product's sensitivity and cost for each choice on calibration windows (tokens
// [B, T] i32, mask [B, T] u8), then picks within `budget_bytes`. Throws one line when even the
// smallest choice of every product is over the budget.
NmSearchTable search_nm_forms(const models::Encoder& teacher, const Tensor& tokens, const Tensor& mask,
                              const std::vector<NmProductForm>& choices, int64_t budget_bytes);

// The multiple-choice knapsack alone: per item, the choice indices minimising the summed value
// with the summed cost <= budget (costs rounded up to 1/4096 of the budget).
std::vector<int> pick_within_budget(const std::vector<std::vector<double>>& value,
                                    const std::vector<std::vector<int64_t>>& cost, int64_t budget);

}  // namespace gannet::compress
