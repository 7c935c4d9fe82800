// Pacing functions: a value that grows with the training step from min to max, as DeepSpeed's
// curriculum scheduler and random-LTD scheduler define them (fixed_linear, fixed_root,
// fixed_discrete). Used for curriculum difficulty and for random-LTD's kept-token count.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gannet::data {

enum class PacingType { fixed_linear, fixed_root, fixed_discrete };

// Parses "fixed_linear" | "fixed_root" | "fixed_discrete"; throws naming `key` otherwise.
PacingType parse_pacing_type(const std::string& text, const std::string& key);
const char* pacing_type_name(PacingType t);

struct Pacing {
  PacingType type = PacingType::fixed_linear;
  int64_t min_value = 1;
  int64_t max_value = 1;
  int64_t total_steps = 1;   // total_curriculum_step / require_steps: step at which max is reached
  int64_t value_step = 1;    // difficulty_step / seq_per_step: values are multiples of it
  double root_degree = 1;    // fixed_root only
  // fixed_discrete only: difficulty[i] holds while step <= max_step[i]; the last holds after.
  std::vector<int64_t> discrete_values, discrete_max_steps;

  // Value at global step `step` (0-based). fixed_linear / fixed_root:
  //   v = floor((step / total_steps)^(1/root_degree) * (max - min) + min), rounded down to a
  //   multiple of value_step, then clamped to [min, max]; max once the formula reaches it
  // (DeepSpeed rounds down without the lower clamp; gannet never goes under min_value).
  int64_t at(int64_t step) const;
  // Throws (naming `context`) on inconsistent settings.
  void validate(const std::string& context) const;
};

}  // namespace gannet::data
