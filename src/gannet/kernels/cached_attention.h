// Attention of one query row of one head over a KV cache, the inner step of inference:
//   s_j = scale * q . k_j  (j < L),   p = softmax(s),   out = sum_j p_j v_j.
// The cache layout is chosen for this kernel. Keys in blocks of kKeyBlock positions: block b holds
// components 0..D-1 of keys 16b..16b+15 as D rows of 16 floats, Kb[key_index(j, d, D)], so that the
// scores of 16 keys come out of one vector FMA per component without horizontal sums, and a head's
// keys are one contiguous run of memory (ceil(L / 16) blocks of 16 D floats) that the hardware
// prefetcher streams (a plain transposed layout, Kt[d * context + j], spreads them over D rows of
// the whole context: D short streams per head, latency-bound once the weights have pushed the
// cache out of every cache level). Values as rows, V[j * ldv + d]. A causal prefix is expressed by
// L (the keys a row sees).
#pragma once
#include <cstdint>

namespace gannet::kernels {

constexpr int64_t kKeyBlock = 16;
// Where component d of key j lives in a head's blocked keys.
inline int64_t key_index(int64_t j, int64_t d, int64_t D) {
  return (j / kKeyBlock) * kKeyBlock * D + d * kKeyBlock + j % kKeyBlock;
}
// Floats of a head's blocked keys for `context` positions.
inline int64_t key_plane(int64_t context, int64_t D) { return (context + kKeyBlock - 1) / kKeyBlock * kKeyBlock * D; }

// scores: scratch of at least L floats. L >= 1.
void attend_cached(const float* q, const float* Kb, const float* V, int64_t ldv, int64_t L, int64_t D, float scale,
                   float* scores, float* out);

namespace ref {
// Accumulates in double.
void attend_cached(const float* q, const float* Kb, const float* V, int64_t ldv, int64_t L, int64_t D, float scale,
                   float* scores, float* out);
}  // namespace ref
namespace avx2 {
void attend_cached(const float* q, const float* Kb, const float* V, int64_t ldv, int64_t L, int64_t D, float scale,
                   float* scores, float* out);
}  // namespace avx2
namespace avx512 {
void attend_cached(const float* q, const float* Kb, const float* V, int64_t ldv, int64_t L, int64_t D, float scale,
                   float* scores, float* out);
}  // namespace avx512

}  // namespace gannet::kernels
