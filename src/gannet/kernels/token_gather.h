// Row gather and scatter for token dropping (random-LTD): rows of a row-major [N, C] float matrix
// picked by an index list. The indices of one call are distinct and in [0, N) (checked), so the
// scatters are race-free; rows are copied whole (memcpy is already vectorized, so there is no
// _simd variant), parallel over rows.
#pragma once
#include <cstdint>

namespace gannet::kernels {

// Throws gannet::Error unless every idx[i] is in [0, N) and no index repeats.
void check_row_indices(const int32_t* idx, int64_t M, int64_t N);
// dst[i, :] = src[idx[i], :] for i < M.   src [N, C], dst [M, C]
void gather_rows(const float* src, const int32_t* idx, int64_t M, int64_t C, float* dst);
// dst[idx[i], :] = src[i, :].             src [M, C], dst [N, C]
void scatter_rows(const float* src, const int32_t* idx, int64_t M, int64_t C, float* dst);
// dst[idx[i], :] += src[i, :].
void scatter_add_rows(const float* src, const int32_t* idx, int64_t M, int64_t C, float* dst);
// dst[idx[i], :] = 0.
void zero_rows(float* dst, const int32_t* idx, int64_t M, int64_t C);

namespace ref {
void gather_rows(const float* src, const int32_t* idx, int64_t M, int64_t C, float* dst);
void scatter_rows(const float* src, const int32_t* idx, int64_t M, int64_t C, float* dst);
void scatter_add_rows(const float* src, const int32_t* idx, int64_t M, int64_t C, float* dst);
void zero_rows(float* dst, const int32_t* idx, int64_t M, int64_t C);
}  // namespace ref

}  // namespace gannet::kernels
