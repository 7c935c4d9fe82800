// AdamW parameter update (PyTorch's torch.optim.AdamW semantics) and the sum of squares used for
// global-norm gradient clipping, on contiguous float arrays.
#pragma once
#include <cstdint>

namespace gannet::kernels {

// Throws gannet::Error unless step >= 1 (the bias corrections divide by 1 - beta^step). Every ISA
// variant calls this one definition, so no *_simd.cpp file instantiates the message templates.
void check_adamw_step(int64_t step);

// One AdamW step over n elements; step counts from 1 (throws gannet::Error if step < 1):
//   g = grad * grad_scale
//   param -= lr * weight_decay * param              (decoupled weight decay, on the old param)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   param -= lr * (m / (1 - beta1^step)) / (sqrt(v / (1 - beta2^step)) + eps)
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step, float grad_scale);
// sum_i x[i]^2, accumulated in double (float vector partial sums over short blocks). The result does
// not depend on the thread count.
double sum_squares(const float* x, int64_t n);

namespace ref {
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step, float grad_scale);
double sum_squares(const float* x, int64_t n);
}  // namespace ref
namespace avx2 {
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step, float grad_scale);
double sum_squares(const float* x, int64_t n);
}  // namespace avx2
namespace avx512 {
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step, float grad_scale);
double sum_squares(const float* x, int64_t n);
}  // namespace avx512

}  // namespace gannet::kernels
