// Bias and elementwise helpers on contiguous float arrays: bias add and its gradient on row-major
// [rows, cols] arrays, and plain vector add / accumulate / scale.
#pragma once
#include <cstdint>

namespace gannet::kernels {

// y[r,c] += bias[c], in place.
void add_bias(float* y, const float* bias, int64_t rows, int64_t cols);
// dbias[c] += sum_r dy[r,c] (accumulated, so gradients of several micro-batches add up). Each
// column is summed in row order whatever the thread count, so results are reproducible.
void bias_grad(const float* dy, float* dbias, int64_t rows, int64_t cols);
// y[i] = a[i] + b[i]; y may alias a or b.
void add(const float* a, const float* b, float* y, int64_t n);
// y[i] += x[i].
void add_inplace(float* y, const float* x, int64_t n);
// y[i] *= s.
void scale_inplace(float* y, float s, int64_t n);

namespace ref {
void add_bias(float* y, const float* bias, int64_t rows, int64_t cols);
void bias_grad(const float* dy, float* dbias, int64_t rows, int64_t cols);
void add(const float* a, const float* b, float* y, int64_t n);
void add_inplace(float* y, const float* x, int64_t n);
void scale_inplace(float* y, float s, int64_t n);
}  // namespace ref
namespace avx2 {
void add_bias(float* y, const float* bias, int64_t rows, int64_t cols);
void bias_grad(const float* dy, float* dbias, int64_t rows, int64_t cols);
void add(const float* a, const float* b, float* y, int64_t n);
void add_inplace(float* y, const float* x, int64_t n);
void scale_inplace(float* y, float s, int64_t n);
}  // namespace avx2
namespace avx512 {
void add_bias(float* y, const float* bias, int64_t rows, int64_t cols);
void bias_grad(const float* dy, float* dbias, int64_t rows, int64_t cols);
void add(const float* a, const float* b, float* y, int64_t n);
void add_inplace(float* y, const float* x, int64_t n);
void scale_inplace(float* y, float s, int64_t n);
}  // namespace avx512

}  // namespace gannet::kernels
