// Vector body of attend_cached; compiled once per ISA (see core/simd.h).
#include "gannet/core/simd.h"
#include "gannet/kernels/cached_attention.h"

namespace gannet::kernels::GANNET_ISA {
using namespace gannet::simd;

void attend_cached(const float* q, const float* Kb, const float* V, int64_t ldv, int64_t L, int64_t D, float scale,
                   float* scores, float* out) {
  constexpr int64_t B = kKeyBlock;  // a multiple of W: a vector of keys never straddles two blocks
  auto keys_at = [&](int64_t j) { return Kb + key_index(j, 0, D); };  // component d at + d * B
  // Scores, W keys per vector, four vectors at a time for independent FMA chains.
  int64_t j = 0;
  for (; j + 4 * W <= L; j += 4 * W) {
    const float *k0 = keys_at(j), *k1 = keys_at(j + W), *k2 = keys_at(j + 2 * W), *k3 = keys_at(j + 3 * W);
    vf a0 = zero(), a1 = zero(), a2 = zero(), a3 = zero();
    for (int64_t d = 0; d < D; ++d) {
      vf qd = set1(q[d]);
      a0 = fmadd(qd, load(k0 + d * B), a0);
      a1 = fmadd(qd, load(k1 + d * B), a1);
      a2 = fmadd(qd, load(k2 + d * B), a2);
      a3 = fmadd(qd, load(k3 + d * B), a3);
    }
    vf s = set1(scale);
    store(scores + j, mul(a0, s));
    store(scores + j + W, mul(a1, s));
    store(scores + j + 2 * W, mul(a2, s));
    store(scores + j + 3 * W, mul(a3, s));
  }
  for (; j < L; j += W) {
    int n = (int)(L - j < W ? L - j : W);
    const float* k = keys_at(j);
    vf a = zero();
    for (int64_t d = 0; d < D; ++d) a = fmadd(set1(q[d]), load_partial(k + d * B, n), a);
    store_partial(scores + j, mul(a, set1(scale)), n);
  }
  // Softmax, inline: kernels/softmax's row function sits behind a parallel-for entry that, called
  // once per (row, head), cost prefill of 512 tokens about a fifth of its speed (measured).
  vf mx = set1(-3.4e38f);
  for (j = 0; j + W <= L; j += W) mx = max(mx, load(scores + j));
  if (j < L) mx = max(mx, load_partial(scores + j, (int)(L - j), -3.4e38f));
  vf m = set1(reduce_max(mx));
  vf sum = zero();
  for (j = 0; j + W <= L; j += W) {
    vf e = exp(sub(load(scores + j), m));
    store(scores + j, e);
    sum = add(sum, e);
  }
  if (j < L) {
    int n = (int)(L - j);
    vf e = exp(sub(load_partial(scores + j, n), m));
    store_partial(scores + j, e, n);
    sum = add(sum, load_partial(scores + j, n));
  }
  float inv = 1.f / reduce_add(sum);
  // out = sum_j p_j v_j, W components at a time, four keys at a time.
  for (int64_t d = 0; d < D; d += W) {
    int n = (int)(D - d < W ? D - d : W);
    vf o0 = zero(), o1 = zero(), o2 = zero(), o3 = zero();
    const float* v = V + d;
    j = 0;
    if (n == W) {
      for (; j + 4 <= L; j += 4) {
        o0 = fmadd(set1(scores[j]), load(v + j * ldv), o0);
        o1 = fmadd(set1(scores[j + 1]), load(v + (j + 1) * ldv), o1);
        o2 = fmadd(set1(scores[j + 2]), load(v + (j + 2) * ldv), o2);
        o3 = fmadd(set1(scores[j + 3]), load(v + (j + 3) * ldv), o3);
      }
      for (; j < L; ++j) o0 = fmadd(set1(scores[j]), load(v + j * ldv), o0);
    } else {
      for (; j < L; ++j) o0 = fmadd(set1(scores[j]), load_partial(v + j * ldv, n), o0);
    }
    vf o = mul(add(add(o0, o1), add(o2, o3)), set1(inv));
    store_partial(out + d, o, n);
  }
  for (j = 0; j < L; ++j) scores[j] *= inv;
}

}  // namespace gannet::kernels::GANNET_ISA
