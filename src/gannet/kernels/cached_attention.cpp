#include "gannet/kernels/cached_attention.h"

#include <cmath>
#include <vector>

#include "gannet/core/dispatch.h"

namespace gannet::kernels {

namespace ref {
void attend_cached(const float* q, const float* Kb, const float* V, int64_t ldv, int64_t L, int64_t D, float scale,
                   float* scores, float* out) {
  std::vector<double> s(L);
  double mx = -INFINITY;
  for (int64_t j = 0; j < L; ++j) {
    double dot = 0;
    for (int64_t d = 0; d < D; ++d) dot += (double)q[d] * Kb[key_index(j, d, D)];
    s[j] = dot * scale;
    mx = std::max(mx, s[j]);
  }
  double sum = 0;
  for (int64_t j = 0; j < L; ++j) sum += (s[j] = std::exp(s[j] - mx));
  for (int64_t j = 0; j < L; ++j) scores[j] = (float)(s[j] / sum);
  for (int64_t d = 0; d < D; ++d) {
    double o = 0;
    for (int64_t j = 0; j < L; ++j) o += s[j] / sum * V[j * ldv + d];
    out[d] = (float)o;
  }
}
}  // namespace ref

void attend_cached(const float* q, const float* Kb, const float* V, int64_t ldv, int64_t L, int64_t D, float scale,
                   float* scores, float* out) {
  GANNET_DISPATCH(attend_cached, q, Kb, V, ldv, L, D, scale, scores, out);
}

}  // namespace gannet::kernels
