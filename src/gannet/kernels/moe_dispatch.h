// Moving token rows into and out of an MoE layer's expert buffer, given a kernels::MoeRouting.
// Dispatch is kernels::gather_rows by slot_token (a token may fill several slots). The kernels
// here are the combine step and the backward passes of both: each writes every output row from
// one thread, walking the token's own slot list, so nothing needs atomics. Rows are short
// (n_embd floats) and the loops are plain `omp simd` reductions, parallel over rows.
#pragma once
#include <cstdint>

namespace gannet::kernels {

// dst[n, :] (+)= sum over token n's slots s of w[s] * src[s, :]  (w == nullptr: weights 1).
// src [S, C], dst [N, C]; accumulate = false overwrites dst (a token without slots gets zeros).
void combine_rows(const float* src, const float* w, const int32_t* token_offsets, const int32_t* token_slots,
                  int64_t N, int64_t C, bool accumulate, float* dst);
// dst[s, :] = scale[s] * src[idx[s], :] for s < M.
void scaled_gather_rows(const float* src, const int32_t* idx, const float* scale, int64_t M, int64_t C, float* dst);
// out[s] = dot(a[idx[s], :], b[s, :]) for s < M.
void gathered_row_dots(const float* a, const int32_t* idx, const float* b, int64_t M, int64_t C, float* out);

namespace ref {
void combine_rows(const float* src, const float* w, const int32_t* token_offsets, const int32_t* token_slots,
                  int64_t N, int64_t C, bool accumulate, float* dst);
void scaled_gather_rows(const float* src, const int32_t* idx, const float* scale, int64_t M, int64_t C, float* dst);
void gathered_row_dots(const float* a, const int32_t* idx, const float* b, int64_t M, int64_t C, float* out);
}  // namespace ref

}  // namespace gannet::kernels
