#include "gannet/kernels/embedding.h"

#include <algorithm>
#include <cstdint>
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
void embedding_slice_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out, int64_t B,
                             int64_t T, int64_t C, int64_t first, int64_t rows) {
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      const int64_t id = (int64_t)tokens[b * T + t] - first;
      float* o = out + (b * T + t) * C;
      if (id < 0 || id >= rows) {
        std::fill(o, o + C, 0.f);
        continue;
      }
      const float* w = wte + id * C;
      for (int64_t c = 0; c < C; ++c) o[c] = (float)((double)w[c] + (wpe ? (double)wpe[t * C + c] : 0.0));
    }
  }
}

// Sums each token's (and each position's) gradient rows in double, then adds once to the float
// accumulator. Allocation is fine here: this is the reference, not a hot path.
void embedding_slice_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe, int64_t B,
                              int64_t T, int64_t C, int64_t first, int64_t rows) {
  std::vector<int64_t> idx;  // the rows whose token is in the slice, grouped by token
  for (int64_t i = 0; i < B * T; ++i)
    if ((int64_t)tokens[i] - first >= 0 && (int64_t)tokens[i] - first < rows) idx.push_back(i);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return tokens[a] < tokens[b]; });
  const int64_t n = (int64_t)idx.size();
  std::vector<double> acc(C);
  for (int64_t i = 0; i < n;) {
    int32_t tok = tokens[idx[i]];
    std::fill(acc.begin(), acc.end(), 0.0);
    for (; i < n && tokens[idx[i]] == tok; ++i) {
      const float* d = dout + idx[i] * C;
      for (int64_t c = 0; c < C; ++c) acc[c] += d[c];
    }
    float* w = dwte + ((int64_t)tok - first) * C;
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
}  // namespace ref

void embedding_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out, int64_t B,
                       int64_t T, int64_t C, int64_t vocab) {
  GANNET_DISPATCH(embedding_forward, tokens, wte, wpe, out, B, T, C, vocab);
}
void embedding_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe, int64_t B,
                        int64_t T, int64_t C) {
  GANNET_DISPATCH(embedding_backward, tokens, dout, dwte, dwpe, B, T, C);
}
void embedding_slice_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out, int64_t B,
                             int64_t T, int64_t C, int64_t first, int64_t rows) {
  GANNET_CHECK(B >= 0 && T >= 0 && C >= 0 && first >= 0 && rows >= 0, "embedding slice: bad shape B=", B, " T=", T,
               " C=", C, " first=", first, " rows=", rows);
  GANNET_DISPATCH(embedding_slice_forward, tokens, wte, wpe, out, B, T, C, first, rows);
}
void embedding_slice_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe, int64_t B,
                              int64_t T, int64_t C, int64_t first, int64_t rows) {
  GANNET_CHECK(B >= 0 && T >= 0 && C >= 0 && first >= 0 && rows >= 0, "embedding slice backward: bad shape B=", B,
               " T=", T, " C=", C, " first=", first, " rows=", rows);
  GANNET_DISPATCH(embedding_slice_backward, tokens, dout, dwte, dwpe, B, T, C, first, rows);
}

}  // namespace gannet::kernels
