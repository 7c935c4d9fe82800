#include "gannet/kernels/cross_entropy.h"

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
}  // namespace ref

float cross_entropy_forward_backward(float* logits, const int32_t* targets, float* losses, int64_t N,
                                     int64_t V, float grad_scale) {
  GANNET_DISPATCH(cross_entropy_forward_backward, logits, targets, losses, N, V, grad_scale);
}
float cross_entropy_forward(const float* logits, const int32_t* targets, float* losses, int64_t N, int64_t V) {
  GANNET_DISPATCH(cross_entropy_forward, logits, targets, losses, N, V);
}

}  // namespace gannet::kernels
