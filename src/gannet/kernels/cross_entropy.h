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

// Vocabulary parallelism (Megatron-LM): each rank holds the columns [first, first + V) of every
// row of the whole logits, and targets are ids in the whole vocabulary. The loss of a row is
// log(sum_exp) + max - target_logit, with the max, the sum and the target logit combined over the
// ranks between these steps (max: all-reduce max of row_max; then sum_exp and target_logit:
// all-reduce sum of slice_sums).
// mx[i] = max_j logits[i, j].
void cross_entropy_row_max(const float* logits, float* mx, int64_t N, int64_t V);
// With mx the maximum of the whole row: sum_exp[i] = sum_j exp(logits[i, j] - mx[i]);
// target_logit[i] = logits[i, targets[i] - first] when the target is among this slice's columns,
// else 0 (ignored rows too). With `exps` non-null each exp(logits - mx) is stored there (it may
// alias logits). Targets are not checked here.
void cross_entropy_slice_sums(const float* logits, float* exps, const int32_t* targets, int64_t first,
                              const float* mx, float* sum_exp, float* target_logit, int64_t N, int64_t V);
// From slice_sums' exps and the whole rows' sums: OVERWRITES exps with the gradient of grad_scale
// * sum_i loss_i, grad_scale * (exps / sum_exp - onehot) on non-ignored rows, 0 on ignored ones.
void cross_entropy_slice_backward(float* exps, const int32_t* targets, int64_t first, const float* sum_exp,
                                  int64_t N, int64_t V, float grad_scale);

namespace detail {
// Shared argument check (every ISA's version calls it before writing anything).
void check_cross_entropy_targets(const int32_t* targets, int64_t N, int64_t V);
}  // namespace detail

namespace ref {
float cross_entropy_forward_backward(float* logits, const int32_t* targets, float* losses, int64_t N,
                                     int64_t V, float grad_scale);
float cross_entropy_forward(const float* logits, const int32_t* targets, float* losses, int64_t N, int64_t V);
void cross_entropy_row_max(const float* logits, float* mx, int64_t N, int64_t V);
void cross_entropy_slice_sums(const float* logits, float* exps, const int32_t* targets, int64_t first,
                              const float* mx, float* sum_exp, float* target_logit, int64_t N, int64_t V);
void cross_entropy_slice_backward(float* exps, const int32_t* targets, int64_t first, const float* sum_exp,
                                  int64_t N, int64_t V, float grad_scale);
}  // namespace ref
namespace avx2 {
float cross_entropy_forward_backward(float* logits, const int32_t* targets, float* losses, int64_t N,
                                     int64_t V, float grad_scale);
float cross_entropy_forward(const float* logits, const int32_t* targets, float* losses, int64_t N, int64_t V);
void cross_entropy_row_max(const float* logits, float* mx, int64_t N, int64_t V);
void cross_entropy_slice_sums(const float* logits, float* exps, const int32_t* targets, int64_t first,
                              const float* mx, float* sum_exp, float* target_logit, int64_t N, int64_t V);
void cross_entropy_slice_backward(float* exps, const int32_t* targets, int64_t first, const float* sum_exp,
                                  int64_t N, int64_t V, float grad_scale);
}  // namespace avx2
namespace avx512 {
float cross_entropy_forward_backward(float* logits, const int32_t* targets, float* losses, int64_t N,
                                     int64_t V, float grad_scale);
float cross_entropy_forward(const float* logits, const int32_t* targets, float* losses, int64_t N, int64_t V);
void cross_entropy_row_max(const float* logits, float* mx, int64_t N, int64_t V);
void cross_entropy_slice_sums(const float* logits, float* exps, const int32_t* targets, int64_t first,
                              const float* mx, float* sum_exp, float* target_logit, int64_t N, int64_t V);
void cross_entropy_slice_backward(float* exps, const int32_t* targets, int64_t first, const float* sum_exp,
                                  int64_t N, int64_t V, float grad_scale);
}  // namespace avx512

}  // namespace gannet::kernels
