// Fused softmax + cross-entropy over logits [N, V] (contiguous, row-major), with integer targets [N].
// A target of -1 means "ignore this row": its loss is 0, its gradient 0, and it is not counted in the
// mean. Any other target outside [0, V) throws gannet::Error before anything is written.
#pragma once
#include <cstdint>

namespace gannet::kernels {

constexpr int32_t kIgnoreIndex = -1;

// losses[i] = -log softmax(logits[i,:])[targets[i]] (losses may be nullptr). Returns the mean loss
// over non-ignored rows (0 when every row is ignored). OVERWRITES logits with the gradient of
// grad_scale * sum_i losses[i]: grad_scale * (softmax - onehot) on non-ignored rows, 0 on ignored ones.
float cross_entropy_forward_backward(float* logits, const int32_t* targets, float* losses, int64_t N,
                                     int64_t V, float grad_scale);
// The same losses and mean, without the gradient; logits are left untouched (for evaluation).
float cross_entropy_forward(const float* logits, const int32_t* targets, float* losses, int64_t N, int64_t V);

namespace detail {
// Shared argument check (every ISA's version calls it before writing anything).
void check_cross_entropy_targets(const int32_t* targets, int64_t N, int64_t V);
}  // namespace detail

namespace ref {
float cross_entropy_forward_backward(float* logits, const int32_t* targets, float* losses, int64_t N,
                                     int64_t V, float grad_scale);
float cross_entropy_forward(const float* logits, const int32_t* targets, float* losses, int64_t N, int64_t V);
}  // namespace ref
namespace avx2 {
float cross_entropy_forward_backward(float* logits, const int32_t* targets, float* losses, int64_t N,
                                     int64_t V, float grad_scale);
float cross_entropy_forward(const float* logits, const int32_t* targets, float* losses, int64_t N, int64_t V);
}  // namespace avx2
namespace avx512 {
float cross_entropy_forward_backward(float* logits, const int32_t* targets, float* losses, int64_t N,
                                     int64_t V, float grad_scale);
float cross_entropy_forward(const float* logits, const int32_t* targets, float* losses, int64_t N, int64_t V);
}  // namespace avx512

}  // namespace gannet::kernels
