// tanh-approximated GELU (GPT-2's), forward and backward, on contiguous float arrays.
#pragma once
#include <cstdint>

namespace gannet::kernels {

// y[i] = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
void gelu_forward(const float* x, float* y, int64_t n);
// dx[i] = dy[i] * gelu'(x[i])  (dx may alias dy)
void gelu_backward(const float* x, const float* dy, float* dx, int64_t n);

namespace ref {
void gelu_forward(const float* x, float* y, int64_t n);
void gelu_backward(const float* x, const float* dy, float* dx, int64_t n);
}  // namespace ref
namespace avx2 {
void gelu_forward(const float* x, float* y, int64_t n);
void gelu_backward(const float* x, const float* dy, float* dx, int64_t n);
}  // namespace avx2
namespace avx512 {
void gelu_forward(const float* x, float* y, int64_t n);
void gelu_backward(const float* x, const float* dy, float* dx, int64_t n);
}  // namespace avx512

}  // namespace gannet::kernels
