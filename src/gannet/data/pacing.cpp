#include "gannet/data/pacing.h"

#include <algorithm>
#include <cmath>

#include "gannet/core/error.h"

namespace gannet::data {

PacingType parse_pacing_type(const std::string& text, const std::string& key) {
  if (text == "fixed_linear") return PacingType::fixed_linear;
  if (text == "fixed_root") return PacingType::fixed_root;
  if (text == "fixed_discrete") return PacingType::fixed_discrete;
  fail(str(key, ": '", text, "' is not supported (fixed_linear, fixed_root or fixed_discrete)"));
}

const char* pacing_type_name(PacingType t) {
  switch (t) {
    case PacingType::fixed_linear: return "fixed_linear";
    case PacingType::fixed_root: return "fixed_root";
    case PacingType::fixed_discrete: return "fixed_discrete";
  }
  return "?";
}

void Pacing::validate(const std::string& ctx) const {
  if (type == PacingType::fixed_discrete) {
    GANNET_CHECK(!discrete_values.empty(), ctx, ".schedule_config.difficulty: needs at least one value");
    GANNET_CHECK(discrete_max_steps.size() + 1 == discrete_values.size(), ctx,
                 ".schedule_config.max_step: needs one entry fewer than difficulty (", discrete_values.size(),
                 " difficulties, ", discrete_max_steps.size(), " max steps)");
    for (size_t i = 1; i < discrete_max_steps.size(); ++i)
      GANNET_CHECK(discrete_max_steps[i] > discrete_max_steps[i - 1], ctx,
                   ".schedule_config.max_step: must increase");
    return;
  }
  GANNET_CHECK(min_value <= max_value, ctx, ": min ", min_value, " is above max ", max_value);
  GANNET_CHECK(total_steps > 0, ctx, ".schedule_config: the total step count must be positive, got ", total_steps);
  GANNET_CHECK(value_step > 0, ctx, ".schedule_config: the value step must be positive, got ", value_step);
  GANNET_CHECK(root_degree > 0, ctx, ".schedule_config.root_degree must be positive, got ", root_degree);
}

int64_t Pacing::at(int64_t step) const {
  if (type == PacingType::fixed_discrete) {
    for (size_t i = 0; i < discrete_max_steps.size(); ++i)
      if (step <= discrete_max_steps[i]) return discrete_values[i];
    return discrete_values.back();
  }
  const double degree = type == PacingType::fixed_linear ? 1.0 : root_degree;
  const double frac = std::max(0.0, (double)step / (double)total_steps);
  const double raw = std::pow(frac, 1.0 / degree) * (double)(max_value - min_value) + (double)min_value;
  if (raw >= (double)max_value) return max_value;  // the schedule ends at max even if not a multiple
  int64_t v = (int64_t)std::floor(raw);
  v -= v % value_step;
  return std::clamp(v, min_value, max_value);
}

}  // namespace gannet::data
