// Rounding a size up to a whole number of units (words, groups, row blocks): the one home of the
// helper that the kernels and quantizers each used to define. For sizes already known to be
// small (shapes of tensors in memory); sizes read from files go through core/checked_math.h.
#pragma once
#include <cstdint>

namespace gannet {

// The smallest multiple of m (> 0) that is >= x (>= 0).
constexpr int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

}  // namespace gannet
