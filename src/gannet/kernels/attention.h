// Fused multi-head scaled-dot-product attention, forward and backward, flash-attention style: the
// scores of a block of query rows against a block of keys are computed, masked, turned into
// probabilities and multiplied by V while the block is in cache; the full [T, T] score matrix of a
// head is never stored. Forward saves only the per-row log-sum-exp (lse); backward recomputes the
// probabilities block by block from q, k and lse.
//
// Layout (row-major, all float32):
//   qkv  [B, T, 3C]: q in columns [0, C), k in [C, 2C), v in [2C, 3C); head h uses columns
//        h*D .. (h+1)*D of each part, D = C / H.
//   out  [B, T, C]: heads concatenated (head h in columns h*D .. (h+1)*D).
//   lse  [B, H, T]: log(sum_j exp(s_ij)) of the scaled, masked scores s_ij = q_i.k_j / sqrt(D);
//        -inf for a query row with no valid key.
//   key_mask (optional) [B, T] bytes: 1 = key valid, 0 = padding; nullptr = all keys valid.
// Query i of batch b attends to key j iff (!causal || j <= i) && (key_mask == nullptr ||
// key_mask[b*T + j] != 0). A query row with no valid key gets a zero output and zero gradients.
#pragma once
#include <cstdint>

namespace gannet::kernels {

void attention_forward(const float* qkv, float* out, float* lse, int64_t B, int64_t T, int64_t C,
                       int64_t H, bool causal, const uint8_t* key_mask);

// Writes (overwrites) dqkv [B, T, 3C], the gradient of the loss with respect to qkv, given
// dout = dLoss/dout and the forward's out and lse. Standard flash-attention backward:
// Delta_i = rowsum(dout_i * out_i), dS_ij = P_ij (dP_ij - Delta_i).
void attention_backward(const float* qkv, const float* out, const float* dout, const float* lse,
                        float* dqkv, int64_t B, int64_t T, int64_t C, int64_t H, bool causal,
                        const uint8_t* key_mask);

namespace ref {
// Naive: materializes each head's [T, T] score matrix, accumulates in double.
void attention_forward(const float* qkv, float* out, float* lse, int64_t B, int64_t T, int64_t C,
                       int64_t H, bool causal, const uint8_t* key_mask);
void attention_backward(const float* qkv, const float* out, const float* dout, const float* lse,
                        float* dqkv, int64_t B, int64_t T, int64_t C, int64_t H, bool causal,
                        const uint8_t* key_mask);
}  // namespace ref
namespace avx2 {
void attention_forward(const float* qkv, float* out, float* lse, int64_t B, int64_t T, int64_t C,
                       int64_t H, bool causal, const uint8_t* key_mask);
void attention_backward(const float* qkv, const float* out, const float* dout, const float* lse,
                        float* dqkv, int64_t B, int64_t T, int64_t C, int64_t H, bool causal,
                        const uint8_t* key_mask);
}  // namespace avx2
namespace avx512 {
void attention_forward(const float* qkv, float* out, float* lse, int64_t B, int64_t T, int64_t C,
                       int64_t H, bool causal, const uint8_t* key_mask);
void attention_backward(const float* qkv, const float* out, const float* dout, const float* lse,
                        float* dqkv, int64_t B, int64_t T, int64_t C, int64_t H, bool causal,
                        const uint8_t* key_mask);
}  // namespace avx512

}  // namespace gannet::kernels
