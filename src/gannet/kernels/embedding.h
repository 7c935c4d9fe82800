// Token + position embedding lookup (forward) and its gradient scatter (backward), on contiguous
// row-major float arrays: tokens [B, T], wte [vocab, C], wpe [>= T, C], out/dout [B, T, C]. The
// slice versions serve vocabulary parallelism, where each rank holds a block of rows of the table.
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

// Vocabulary slice: wte holds rows [first, first + rows) of the table. A token among them gives
// wte[id - first] + wpe[t]; any other id a row of zeros (the rank that holds its row adds it, so
// the sum over the ranks' outputs is the whole lookup). Ids are not checked against the vocabulary.
void embedding_slice_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out, int64_t B,
                             int64_t T, int64_t C, int64_t first, int64_t rows);
// ACCUMULATES: dwte[id - first,:] += dout[b,t,:] for the tokens in the slice; dwpe[t,:] +=
// sum_b dout[b,t,:] over every token (dwpe may be nullptr). Deterministic as embedding_backward.
void embedding_slice_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe, int64_t B,
                              int64_t T, int64_t C, int64_t first, int64_t rows);

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
void embedding_slice_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out, int64_t B,
                             int64_t T, int64_t C, int64_t first, int64_t rows);
void embedding_slice_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe, int64_t B,
                              int64_t T, int64_t C, int64_t first, int64_t rows);
}  // namespace ref
namespace avx2 {
void embedding_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out, int64_t B,
                       int64_t T, int64_t C, int64_t vocab);
void embedding_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe, int64_t B,
                        int64_t T, int64_t C);
void embedding_slice_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out, int64_t B,
                             int64_t T, int64_t C, int64_t first, int64_t rows);
void embedding_slice_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe, int64_t B,
                              int64_t T, int64_t C, int64_t first, int64_t rows);
}  // namespace avx2
namespace avx512 {
void embedding_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out, int64_t B,
                       int64_t T, int64_t C, int64_t vocab);
void embedding_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe, int64_t B,
                        int64_t T, int64_t C);
void embedding_slice_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out, int64_t B,
                             int64_t T, int64_t C, int64_t first, int64_t rows);
void embedding_slice_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe, int64_t B,
                              int64_t T, int64_t C, int64_t first, int64_t rows);
}  // namespace avx512

}  // namespace gannet::kernels
