// N:M masks (core/nm_pattern.h: at most n nonzeros in every run of m input columns). The projection
// onto the N:M set, in the Euclidean norm, keeps the n entries of largest magnitude in each run and
// zeroes the rest: the step ADMM takes for its auxiliary variable, the mask of magnitude pruning,
// and the layout the packed sparse format stores.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gannet/core/nm_pattern.h"

namespace gannet::compress {

// The N:M mask of W (f32 [N, K], row-major, K a multiple of m): 1 for the n entries of largest |w|
// in every run, ties going to the lower column. Throws one line on a shape that does not fit or a
// weight that is not finite.
std::vector<uint8_t> nm_mask(const float* W, int64_t N, int64_t K, const NmPattern& p);
// W projected in place onto the N:M set: the entries outside nm_mask set to 0.
void nm_project(float* W, int64_t N, int64_t K, const NmPattern& p);
// Whether every run of W has at most n nonzeros.
bool satisfies_nm(const float* W, int64_t N, int64_t K, const NmPattern& p);

}  // namespace gannet::compress
