// Vector fused softmax + cross-entropy; compiled once per ISA (see core/simd.h).
#include <cmath>
#include <limits>

#include "gannet/core/simd.h"
#include "gannet/kernels/cross_entropy.h"

namespace gannet::kernels::GANNET_ISA {
using namespace gannet::simd;

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // logits below which one thread does it all
constexpr int64_t kParts = 64;             // fixed row partition, so the mean is thread-count independent
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline float row_max(const float* x, int64_t V) {
  vf m0 = set1(kNegInf), m1 = m0;
  int64_t j = 0;
  for (; j + 2 * W <= V; j += 2 * W) {
    m0 = max(m0, load(x + j));
    m1 = max(m1, load(x + j + W));
  }
  for (; j + W <= V; j += W) m0 = max(m0, load(x + j));
  if (j < V) m0 = max(m0, load_partial(x + j, (int)(V - j), kNegInf));
  return reduce_max(max(m0, m1));
}

// sum_j exp(x[j] - mx); with `e` non-null also stores each exp there (e may alias x).
// Tail lanes hold exp(-inf) which the vector exp clamps to about 1e-38: far below one ulp of the
// sum, which is at least 1 (the maximum's own term).
inline float row_sum_exp(const float* x, float* e, int64_t V, float mx) {
  const vf vm = set1(mx);
  vf s0 = zero(), s1 = zero();
  int64_t j = 0;
  for (; j + 2 * W <= V; j += 2 * W) {
    vf a = exp(sub(load(x + j), vm)), b = exp(sub(load(x + j + W), vm));
    if (e) {
      store(e + j, a);
      store(e + j + W, b);
    }
    s0 = add(s0, a);
    s1 = add(s1, b);
  }
  for (; j + W <= V; j += W) {
    vf a = exp(sub(load(x + j), vm));
    if (e) store(e + j, a);
    s0 = add(s0, a);
  }
  if (j < V) {
    int r = (int)(V - j);
    vf a = exp(sub(load_partial(x + j, r, kNegInf), vm));
    if (e) store_partial(e + j, a, r);
    s0 = add(s0, a);
  }
  return reduce_add(add(s0, s1));
}

inline void row_scale(float* y, int64_t V, float s) {
  const vf vs = set1(s);
  int64_t j = 0;
  for (; j + W <= V; j += W) store(y + j, mul(load(y + j), vs));
  if (j < V) store_partial(y + j, mul(load_partial(y + j, (int)(V - j)), vs), (int)(V - j));
}

inline void row_zero(float* y, int64_t V) {
  int64_t j = 0;
  for (; j + W <= V; j += W) store(y + j, zero());
  if (j < V) store_partial(y + j, zero(), (int)(V - j));
}

// One row: returns its loss; with backward, overwrites x with grad_scale * (softmax - onehot).
inline double row_ce(float* xw, const float* x, int64_t V, int32_t tgt, bool backward, float grad_scale) {
  const float mx = row_max(x, V);
  const float xt = x[tgt];  // read before the row is overwritten
  const float s = row_sum_exp(x, backward ? xw : nullptr, V, mx);
  if (backward) {
    row_scale(xw, V, grad_scale / s);
    xw[tgt] -= grad_scale;
  }
  // loss = lse - x[t] = log(s) - (x[t] - mx); the difference is exact-ish in float, the log in double.
  return std::log((double)s) - ((double)xt - (double)mx);
}

float ce(float* xw, const float* x, const int32_t* targets, float* losses, int64_t N, int64_t V,
         bool backward, float grad_scale) {
  detail::check_cross_entropy_targets(targets, N, V);
  if (N == 0) return 0.f;
  const int64_t parts = N < kParts ? N : kParts;
  double part_sum[kParts];
  int64_t part_cnt[kParts];
#pragma omp parallel for schedule(dynamic, 1) if (N * V > kParallelMin && parts > 1)
  for (int64_t p = 0; p < parts; ++p) {
    const int64_t i0 = p * N / parts, i1 = (p + 1) * N / parts;
    double sum = 0.0;
    int64_t cnt = 0;
    for (int64_t i = i0; i < i1; ++i) {
      const int32_t tgt = targets[i];
      if (tgt == kIgnoreIndex) {
        if (losses) losses[i] = 0.f;
        if (backward) row_zero(xw + i * V, V);
        continue;
      }
      double loss = row_ce(backward ? xw + i * V : nullptr, x + i * V, V, tgt, backward, grad_scale);
      if (losses) losses[i] = (float)loss;
      sum += loss;
      ++cnt;
    }
    part_sum[p] = sum;
    part_cnt[p] = cnt;
  }
  double total = 0.0;
  int64_t count = 0;
  for (int64_t p = 0; p < parts; ++p) {
    total += part_sum[p];
    count += part_cnt[p];
  }
  return count ? (float)(total / (double)count) : 0.f;
}
}  // namespace

float cross_entropy_forward_backward(float* logits, const int32_t* targets, float* losses, int64_t N,
                                     int64_t V, float grad_scale) {
  return ce(logits, logits, targets, losses, N, V, true, grad_scale);
}

float cross_entropy_forward(const float* logits, const int32_t* targets, float* losses, int64_t N, int64_t V) {
  return ce(nullptr, logits, targets, losses, N, V, false, 0.f);
}

void cross_entropy_row_max(const float* logits, float* mx, int64_t N, int64_t V) {
#pragma omp parallel for schedule(static) if (N * V > kParallelMin && N > 1)
  for (int64_t i = 0; i < N; ++i) mx[i] = row_max(logits + i * V, V);
}

void cross_entropy_slice_sums(const float* logits, float* exps, const int32_t* targets, int64_t first,
                              const float* mx, float* sum_exp, float* target_logit, int64_t N, int64_t V) {
#pragma omp parallel for schedule(static) if (N * V > kParallelMin && N > 1)
  for (int64_t i = 0; i < N; ++i) {
    const float* x = logits + i * V;
    const int64_t tgt = (int64_t)targets[i] - first;
    target_logit[i] = targets[i] != kIgnoreIndex && tgt >= 0 && tgt < V ? x[tgt] : 0.f;  // before exps overwrite it
    sum_exp[i] = row_sum_exp(x, exps ? exps + i * V : nullptr, V, mx[i]);
  }
}

void cross_entropy_slice_backward(float* exps, const int32_t* targets, int64_t first, const float* sum_exp,
                                  int64_t N, int64_t V, float grad_scale) {
#pragma omp parallel for schedule(static) if (N * V > kParallelMin && N > 1)
  for (int64_t i = 0; i < N; ++i) {
    float* g = exps + i * V;
    if (targets[i] == kIgnoreIndex) {
      row_zero(g, V);
      continue;
    }
    row_scale(g, V, grad_scale / sum_exp[i]);
    const int64_t tgt = (int64_t)targets[i] - first;
    if (tgt >= 0 && tgt < V) g[tgt] -= grad_scale;
  }
}

}  // namespace gannet::kernels::GANNET_ISA
