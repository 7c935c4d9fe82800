// Token + position embedding lookup (forward) and its gradient scatter (backward), on contiguous
// row-major float arrays: tokens [B, T], wte [vocab, C], wpe [>= T, C], out/dout [B, T, C].
#pragma once
#include <cstdint>

namespace gannet::kernels {

// out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]; wpe may be nullptr (no position term).
// Throws gannet::Error naming the id and its position if a token is outside [0, vocab); nothing is
// written then.
void embedding_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out, int64_t B,
                       int64_t T, int64_t C, int64_t vocab);
// ACCUMULATES: dwte[tokens[b,t],:] += dout[b,t,:]; dwpe[t,:] += sum_b dout[b,t,:] (dwpe may be
// nullptr). Deterministic and race-free under OpenMP (threads own disjoint channel blocks; each
// element is summed in row order whatever the thread count). Throws on a negative token id.
void embedding_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe, int64_t B,
                        int64_t T, int64_t C);

namespace detail {
// Shared argument checks (every ISA's version calls them before writing anything).
void check_embedding_tokens(const int32_t* tokens, int64_t B, int64_t T, int64_t C, int64_t vocab);
void check_embedding_backward_tokens(const int32_t* tokens, int64_t B, int64_t T, int64_t C);
}  // namespace detail

namespace ref {
void embedding_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out, int64_t B,
                       int64_t T, int64_t C, int64_t vocab);
void embedding_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe, int64_t B,
                        int64_t T, int64_t C);
}  // namespace ref
namespace avx2 {
void embedding_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out, int64_t B,
                       int64_t T, int64_t C, int64_t vocab);
void embedding_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe, int64_t B,
                        int64_t T, int64_t C);
}  // namespace avx2
namespace avx512 {
void embedding_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out, int64_t B,
                       int64_t T, int64_t C, int64_t vocab);
void embedding_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe, int64_t B,
                        int64_t T, int64_t C);
}  // namespace avx512

}  // namespace gannet::kernels
