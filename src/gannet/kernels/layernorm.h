// Layer normalization over the last dimension of a row-major [rows, cols] float array, forward and
// backward.
#pragma once
#include <cstdint>

namespace gannet::kernels {

// y[r,c] = (x[r,c] - mean_r) * rstd_r * gamma[c] + beta[c], with mean_r the row mean and
// rstd_r = 1 / sqrt(var_r + eps) (biased variance). mean and rstd ([rows] each) receive the row
// statistics for the backward pass; either may be nullptr when not needed. y may alias x.
void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                       float* rstd, int64_t rows, int64_t cols, float eps);
// Given dy = dL/dy and the forward's saved mean/rstd: dx is written (overwritten; it may alias dy),
// dgamma[c] += sum_r dy[r,c] xhat[r,c] and dbeta[c] += sum_r dy[r,c] are accumulated, so that
// gradients of several micro-batches add up. The parameter sums are reduced in a fixed order, so a
// given thread count gives bitwise-reproducible results.
void layernorm_backward(const float* x, const float* gamma, const float* mean, const float* rstd,
                        const float* dy, float* dx, float* dgamma, float* dbeta, int64_t rows,
                        int64_t cols);

namespace ref {
void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                       float* rstd, int64_t rows, int64_t cols, float eps);
void layernorm_backward(const float* x, const float* gamma, const float* mean, const float* rstd,
                        const float* dy, float* dx, float* dgamma, float* dbeta, int64_t rows,
                        int64_t cols);
}  // namespace ref
namespace avx2 {
void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                       float* rstd, int64_t rows, int64_t cols, float eps);
void layernorm_backward(const float* x, const float* gamma, const float* mean, const float* rstd,
                        const float* dy, float* dx, float* dgamma, float* dbeta, int64_t rows,
                        int64_t cols);
}  // namespace avx2
namespace avx512 {
void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                       float* rstd, int64_t rows, int64_t cols, float eps);
void layernorm_backward(const float* x, const float* gamma, const float* mean, const float* rstd,
                        const float* dy, float* dx, float* dgamma, float* dbeta, int64_t rows,
                        int64_t cols);
}  // namespace avx512

}  // namespace gannet::kernels
