#include "gannet/kernels/embedding.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "gannet/core/dispatch.h"
#include "gannet/core/error.h"

namespace gannet::kernels {

namespace detail {
void check_embedding_tokens(const int32_t* tokens, int64_t B, int64_t T, int64_t C, int64_t vocab) {
  GANNET_CHECK(B >= 0 && T >= 0 && C >= 0 && vocab >= 0, "embedding: bad shape B=", B, " T=", T, " C=", C,
               " vocab=", vocab);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      int32_t id = tokens[b * T + t];
      GANNET_CHECK(id >= 0 && id < vocab, "embedding: token id ", id, " at position (b=", b, ", t=", t,
                   ") is outside the vocabulary [0, ", vocab, ")");
    }
  }
}

void check_embedding_backward_tokens(const int32_t* tokens, int64_t B, int64_t T, int64_t C) {
  GANNET_CHECK(B >= 0 && T >= 0 && C >= 0, "embedding backward: bad shape B=", B, " T=", T, " C=", C);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      int32_t id = tokens[b * T + t];
      GANNET_CHECK(id >= 0, "embedding backward: token id ", id, " at position (b=", b, ", t=", t,
                   ") is negative");
    }
  }
}
}  // namespace detail

namespace ref {
void embedding_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out, int64_t B,
                       int64_t T, int64_t C, int64_t vocab) {
  detail::check_embedding_tokens(tokens, B, T, C, vocab);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      const float* w = wte + (int64_t)tokens[b * T + t] * C;
      float* o = out + (b * T + t) * C;
      for (int64_t c = 0; c < C; ++c) o[c] = (float)((double)w[c] + (wpe ? (double)wpe[t * C + c] : 0.0));
    }
  }
}

// Sums each token's (and each position's) gradient rows in double, then adds once to the float
// accumulator. Allocation is fine here: this is the reference, not a hot path.
void embedding_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe, int64_t B,
                        int64_t T, int64_t C) {
  detail::check_embedding_backward_tokens(tokens, B, T, C);
  const int64_t n = B * T;
  std::vector<int64_t> idx(n);
  std::iota(idx.begin(), idx.end(), int64_t{0});
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return tokens[a] < tokens[b]; });
  std::vector<double> acc(C);
  for (int64_t i = 0; i < n;) {
    int32_t tok = tokens[idx[i]];
    std::fill(acc.begin(), acc.end(), 0.0);
    for (; i < n && tokens[idx[i]] == tok; ++i) {
      const float* d = dout + idx[i] * C;
      for (int64_t c = 0; c < C; ++c) acc[c] += d[c];
    }
    float* w = dwte + (int64_t)tok * C;
    for (int64_t c = 0; c < C; ++c) w[c] = (float)(w[c] + acc[c]);
  }
  if (dwpe) {
    for (int64_t t = 0; t < T; ++t) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t b = 0; b < B; ++b) {
        const float* d = dout + (b * T + t) * C;
        for (int64_t c = 0; c < C; ++c) acc[c] += d[c];
      }
      for (int64_t c = 0; c < C; ++c) dwpe[t * C + c] = (float)(dwpe[t * C + c] + acc[c]);
    }
  }
}
}  // namespace ref

void embedding_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out, int64_t B,
                       int64_t T, int64_t C, int64_t vocab) {
  GANNET_DISPATCH(embedding_forward, tokens, wte, wpe, out, B, T, C, vocab);
}
void embedding_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe, int64_t B,
                        int64_t T, int64_t C) {
  GANNET_DISPATCH(embedding_backward, tokens, dout, dwte, dwpe, B, T, C);
}

}  // namespace gannet::kernels
