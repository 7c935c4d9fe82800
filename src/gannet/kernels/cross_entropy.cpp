#include "gannet/kernels/cross_entropy.h"

#include <algorithm>
#include <cmath>

#include "gannet/core/dispatch.h"
#include "gannet/core/error.h"

namespace gannet::kernels {

namespace detail {
void check_cross_entropy_targets(const int32_t* targets, int64_t N, int64_t V) {
  GANNET_CHECK(N >= 0 && V >= 1, "cross_entropy: bad shape N=", N, " V=", V);
  for (int64_t i = 0; i < N; ++i) {
    int32_t t = targets[i];
    GANNET_CHECK(t == kIgnoreIndex || (t >= 0 && t < V), "cross_entropy: target ", t, " at row ", i,
                 " is outside [0, ", V, ") and is not the ignore index ", kIgnoreIndex);
  }
}
}  // namespace detail

namespace ref {
namespace {
// The reference computes in double, straight from the definition. grad == nullptr: no gradient.
float ce(const float* logits, float* grad, const int32_t* targets, float* losses, int64_t N, int64_t V,
         double grad_scale) {
  detail::check_cross_entropy_targets(targets, N, V);
  double total = 0.0;
  int64_t count = 0;
  for (int64_t i = 0; i < N; ++i) {
    const float* x = logits + i * V;
    const int32_t tgt = targets[i];
    if (tgt == kIgnoreIndex) {
      if (losses) losses[i] = 0.f;
      if (grad)
        for (int64_t j = 0; j < V; ++j) grad[i * V + j] = 0.f;
      continue;
    }
    double mx = x[0];
    for (int64_t j = 1; j < V; ++j) mx = std::fmax(mx, (double)x[j]);
    double s = 0.0;
    for (int64_t j = 0; j < V; ++j) s += std::exp((double)x[j] - mx);
    const double lse = mx + std::log(s), loss = lse - (double)x[tgt];
    if (losses) losses[i] = (float)loss;
    total += loss;
    ++count;
    if (grad) {
      for (int64_t j = 0; j < V; ++j) {
        double g = std::exp((double)x[j] - lse) - (j == tgt ? 1.0 : 0.0);
        grad[i * V + j] = (float)(grad_scale * g);  // x[j] was read before: grad may alias logits
      }
    }
  }
  return count ? (float)(total / (double)count) : 0.f;
}
}  // namespace

float cross_entropy_forward_backward(float* logits, const int32_t* targets, float* losses, int64_t N,
                                     int64_t V, float grad_scale) {
  return ce(logits, logits, targets, losses, N, V, grad_scale);
}
float cross_entropy_forward(const float* logits, const int32_t* targets, float* losses, int64_t N, int64_t V) {
  return ce(logits, nullptr, targets, losses, N, V, 0.0);
}

void cross_entropy_row_max(const float* logits, float* mx, int64_t N, int64_t V) {
  for (int64_t i = 0; i < N; ++i) mx[i] = *std::max_element(logits + i * V, logits + (i + 1) * V);
}

void cross_entropy_slice_sums(const float* logits, float* exps, const int32_t* targets, int64_t first,
                              const float* mx, float* sum_exp, float* target_logit, int64_t N, int64_t V) {
  for (int64_t i = 0; i < N; ++i) {
    const float* x = logits + i * V;
    const int64_t tgt = (int64_t)targets[i] - first;
    target_logit[i] = targets[i] != kIgnoreIndex && tgt >= 0 && tgt < V ? x[tgt] : 0.f;
    double s = 0.0;
    for (int64_t j = 0; j < V; ++j) {
      const double e = std::exp((double)x[j] - (double)mx[i]);
      s += e;
      if (exps) exps[i * V + j] = (float)e;  // x[j] was read before: exps may alias logits
    }
    sum_exp[i] = (float)s;
  }
}

void cross_entropy_slice_backward(float* exps, const int32_t* targets, int64_t first, const float* sum_exp,
                                  int64_t N, int64_t V, float grad_scale) {
  for (int64_t i = 0; i < N; ++i) {
    float* g = exps + i * V;
    if (targets[i] == kIgnoreIndex) {
      std::fill(g, g + V, 0.f);
      continue;
    }
    for (int64_t j = 0; j < V; ++j) g[j] = (float)((double)grad_scale * g[j] / sum_exp[i]);
    const int64_t tgt = (int64_t)targets[i] - first;
    if (tgt >= 0 && tgt < V) g[tgt] -= grad_scale;
  }
}
}  // namespace ref

float cross_entropy_forward_backward(float* logits, const int32_t* targets, float* losses, int64_t N,
                                     int64_t V, float grad_scale) {
  GANNET_DISPATCH(cross_entropy_forward_backward, logits, targets, losses, N, V, grad_scale);
}
float cross_entropy_forward(const float* logits, const int32_t* targets, float* losses, int64_t N, int64_t V) {
  GANNET_DISPATCH(cross_entropy_forward, logits, targets, losses, N, V);
}
void cross_entropy_row_max(const float* logits, float* mx, int64_t N, int64_t V) {
  GANNET_CHECK(N >= 0 && V >= 1, "cross_entropy: bad shape N=", N, " V=", V);
  GANNET_DISPATCH(cross_entropy_row_max, logits, mx, N, V);
}
void cross_entropy_slice_sums(const float* logits, float* exps, const int32_t* targets, int64_t first,
                              const float* mx, float* sum_exp, float* target_logit, int64_t N, int64_t V) {
  GANNET_CHECK(N >= 0 && V >= 1 && first >= 0, "cross_entropy: bad slice N=", N, " V=", V, " first=", first);
  GANNET_DISPATCH(cross_entropy_slice_sums, logits, exps, targets, first, mx, sum_exp, target_logit, N, V);
}
void cross_entropy_slice_backward(float* exps, const int32_t* targets, int64_t first, const float* sum_exp,
                                  int64_t N, int64_t V, float grad_scale) {
  GANNET_CHECK(N >= 0 && V >= 1 && first >= 0, "cross_entropy: bad slice N=", N, " V=", V, " first=", first);
  GANNET_DISPATCH(cross_entropy_slice_backward, exps, targets, first, sum_exp, N, V, grad_scale);
}

}  // namespace gannet::kernels
