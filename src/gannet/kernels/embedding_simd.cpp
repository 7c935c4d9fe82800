// Vector embedding lookup and gradient scatter; compiled once per ISA (see core/simd.h).
#include <cstdint>

#include "gannet/core/simd.h"
#include "gannet/kernels/embedding.h"

namespace gannet::kernels::GANNET_ISA {
using namespace gannet::simd;

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // elements of output below which one thread does it all
constexpr int64_t kBlock = 64;             // channels per backward work item (4 cache lines)

// y[c] = a[c] + b[c] for c in [c0, c1); b may be nullptr.
inline void add_row(float* y, const float* a, const float* b, int64_t c0, int64_t c1) {
  int64_t c = c0;
  if (b) {
    for (; c + W <= c1; c += W) store(y + c, add(load(a + c), load(b + c)));
    if (c < c1) {
      int r = (int)(c1 - c);
      store_partial(y + c, add(load_partial(a + c, r), load_partial(b + c, r)), r);
    }
  } else {
    for (; c + W <= c1; c += W) store(y + c, load(a + c));
    if (c < c1) store_partial(y + c, load_partial(a + c, (int)(c1 - c)), (int)(c1 - c));
  }
}

// y[c] += x[c] for c in [c0, c1).
inline void acc_row(float* y, const float* x, int64_t c0, int64_t c1) {
  int64_t c = c0;
  for (; c + W <= c1; c += W) store(y + c, add(load(y + c), load(x + c)));
  if (c < c1) {
    int r = (int)(c1 - c);
    store_partial(y + c, add(load_partial(y + c, r), load_partial(x + c, r)), r);
  }
}
inline void zero_row(float* y, int64_t C) {
  int64_t c = 0;
  for (; c + W <= C; c += W) store(y + c, zero());
  if (c < C) store_partial(y + c, zero(), (int)(C - c));
}
}  // namespace

void embedding_slice_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out, int64_t B,
                             int64_t T, int64_t C, int64_t first, int64_t rows) {
  const int64_t n = B * T;
#pragma omp parallel for schedule(static) if (n * C > kParallelMin && n > 1)
  for (int64_t r = 0; r < n; ++r) {
    const int64_t id = (int64_t)tokens[r] - first;
    if (id >= 0 && id < rows) add_row(out + r * C, wte + id * C, wpe ? wpe + (r % T) * C : nullptr, 0, C);
    else zero_row(out + r * C, C);
  }
}

// Threads own disjoint channel blocks [c0, c1) of every row, so no two threads write the same float,
// and each element is accumulated in row order: the result is the same for any thread count.
void embedding_slice_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe, int64_t B,
                              int64_t T, int64_t C, int64_t first, int64_t rows) {
  const int64_t n = B * T, nblk = (C + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n * C > kParallelMin && nblk > 1)
  for (int64_t blk = 0; blk < nblk; ++blk) {
    const int64_t c0 = blk * kBlock, c1 = c0 + kBlock < C ? c0 + kBlock : C;
    for (int64_t r = 0; r < n; ++r) {
      const float* d = dout + r * C;
      const int64_t id = (int64_t)tokens[r] - first;
      if (id >= 0 && id < rows) acc_row(dwte + id * C, d, c0, c1);
      if (dwpe) acc_row(dwpe + (r % T) * C, d, c0, c1);
    }
  }
}

void embedding_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out, int64_t B,
                       int64_t T, int64_t C, int64_t vocab) {
  detail::check_embedding_tokens(tokens, B, T, C, vocab);
  embedding_slice_forward(tokens, wte, wpe, out, B, T, C, 0, vocab);
}

void embedding_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe, int64_t B,
                        int64_t T, int64_t C) {
  detail::check_embedding_backward_tokens(tokens, B, T, C);
  embedding_slice_backward(tokens, dout, dwte, dwpe, B, T, C, 0, INT64_MAX);
}

}  // namespace gannet::kernels::GANNET_ISA
