// Attention of one query row of one head over a KV cache, the inner step of inference:
//   s_j = scale * q . k_j  (j < L),   p = softmax(s),   out = sum_j p_j v_j.
// The cache layout is chosen for this kernel: keys transposed, Kt[d * ldk + j] (component d of key
// j), so that the scores of W keys come out of one vector FMA per component without horizontal
// sums; values as rows, V[j * ldv + d]. A causal prefix is expressed by L (the keys a row sees).
#pragma once
#include <cstdint>

namespace gannet::kernels {

// scores: scratch of at least L floats. L >= 1.
void attend_cached(const float* q, const float* Kt, int64_t ldk, const float* V, int64_t ldv, int64_t L,
                   int64_t D, float scale, float* scores, float* out);

namespace ref {
// Accumulates in double.
void attend_cached(const float* q, const float* Kt, int64_t ldk, const float* V, int64_t ldv, int64_t L,
                   int64_t D, float scale, float* scores, float* out);
}  // namespace ref
namespace avx2 {
void attend_cached(const float* q, const float* Kt, int64_t ldk, const float* V, int64_t ldv, int64_t L,
                   int64_t D, float scale, float* scores, float* out);
}  // namespace avx2
namespace avx512 {
void attend_cached(const float* q, const float* Kt, int64_t ldk, const float* V, int64_t ldv, int64_t L,
                   int64_t D, float scale, float* scores, float* out);
}  // namespace avx512

}  // namespace gannet::kernels
