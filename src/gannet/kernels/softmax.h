// Row-wise softmax over the last dimension of a row-major [rows, cols] float array, forward and
// backward.
#pragma once
#include <cstdint>

namespace gannet::kernels {

// y[r,c] = exp(x[r,c] - max_r) / sum_c' exp(x[r,c'] - max_r). Entries of -inf (masked) give exactly
// 0, and a row that is entirely -inf gives all zeros rather than NaN. y may alias x.
void softmax_forward(const float* x, float* y, int64_t rows, int64_t cols);
// From the forward's output y: dx[r,c] = y[r,c] * (dy[r,c] - sum_c' dy[r,c'] y[r,c']).
// dx is written (overwritten); it may alias dy.
void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols);

namespace ref {
void softmax_forward(const float* x, float* y, int64_t rows, int64_t cols);
void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols);
}  // namespace ref
namespace avx2 {
void softmax_forward(const float* x, float* y, int64_t rows, int64_t cols);
void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols);
}  // namespace avx2
namespace avx512 {
void softmax_forward(const float* x, float* y, int64_t rows, int64_t cols);
void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols);
}  // namespace avx512

}  // namespace gannet::kernels
