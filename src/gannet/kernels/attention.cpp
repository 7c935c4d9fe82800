#include "gannet/kernels/attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gannet/core/dispatch.h"
#include "gannet/core/error.h"

namespace gannet::kernels {

namespace {
void check_shape(const char* fn, int64_t B, int64_t T, int64_t C, int64_t H) {
  GANNET_CHECK(B >= 0 && T >= 0 && C >= 0, fn, ": negative size B=", B, " T=", T, " C=", C);
  GANNET_CHECK(H >= 1 && C % H == 0, fn, ": C=", C, " is not a positive multiple of H=", H);
}
}  // namespace

namespace ref {

namespace {
// Scaled scores of one head with masking; invalid entries are -inf. s is [T, T], row-major.
void head_scores(const float* qkv, int64_t b, int64_t h, int64_t T, int64_t C, int64_t D, bool causal,
                 const uint8_t* key_mask, std::vector<double>& s) {
  const double scale = 1.0 / std::sqrt((double)D);
  const int64_t ld = 3 * C;
  const float* q = qkv + b * T * ld + h * D;
  const float* k = q + C;
  for (int64_t i = 0; i < T; ++i) {
    for (int64_t j = 0; j < T; ++j) {
      bool valid = (!causal || j <= i) && (!key_mask || key_mask[b * T + j]);
      if (!valid) {
        s[i * T + j] = -std::numeric_limits<double>::infinity();
        continue;
      }
      double acc = 0.0;
      for (int64_t d = 0; d < D; ++d) acc += (double)q[i * ld + d] * k[j * ld + d];
      s[i * T + j] = acc * scale;
    }
  }
}

// Row-wise softmax in place; returns lse per row (-inf, and a zero row, when no entry is valid).
void softmax_rows(std::vector<double>& s, int64_t T, std::vector<double>& lse) {
  const double ninf = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < T; ++i) {
    double* r = &s[i * T];
    double m = ninf;
    for (int64_t j = 0; j < T; ++j) m = std::max(m, r[j]);
    if (m == ninf) {
      for (int64_t j = 0; j < T; ++j) r[j] = 0.0;
      lse[i] = ninf;
      continue;
    }
    double l = 0.0;
    for (int64_t j = 0; j < T; ++j) l += (r[j] = std::exp(r[j] - m));
    for (int64_t j = 0; j < T; ++j) r[j] /= l;
    lse[i] = m + std::log(l);
  }
}
}  // namespace

void attention_forward(const float* qkv, float* out, float* lse, int64_t B, int64_t T, int64_t C,
                       int64_t H, bool causal, const uint8_t* key_mask) {
  const int64_t D = C / H, ld = 3 * C;
  std::vector<double> p(T * T), l(T);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      head_scores(qkv, b, h, T, C, D, causal, key_mask, p);
      softmax_rows(p, T, l);
      const float* v = qkv + b * T * ld + 2 * C + h * D;
      for (int64_t i = 0; i < T; ++i) {
        lse[(b * H + h) * T + i] = (float)l[i];
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0.0;
          for (int64_t j = 0; j < T; ++j) acc += p[i * T + j] * v[j * ld + d];
          out[(b * T + i) * C + h * D + d] = (float)acc;
        }
      }
    }
  }
}

// Recomputes the probabilities from q and k (it does not use out or lse), then
// dV = P^T dO, dP = dO V^T, dS = P (dP - rowsum(P dP)), dQ = scale dS K, dK = scale dS^T Q.
void attention_backward(const float* qkv, const float* /*out*/, const float* dout,
                        const float* /*lse*/, float* dqkv, int64_t B, int64_t T, int64_t C,
                        int64_t H, bool causal, const uint8_t* key_mask) {
  const int64_t D = C / H, ld = 3 * C;
  const double scale = 1.0 / std::sqrt((double)D);
  std::vector<double> p(T * T), l(T), ds(T * T);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      head_scores(qkv, b, h, T, C, D, causal, key_mask, p);
      softmax_rows(p, T, l);
      const float* q = qkv + b * T * ld + h * D;
      const float* k = q + C;
      const float* v = q + 2 * C;
      const float* dO = dout + b * T * C + h * D;
      float* dq = dqkv + b * T * ld + h * D;
      float* dk = dq + C;
      float* dv = dq + 2 * C;
      for (int64_t i = 0; i < T; ++i) {
        double rowdot = 0.0;
        for (int64_t j = 0; j < T; ++j) {
          double dp = 0.0;
          for (int64_t d = 0; d < D; ++d) dp += (double)dO[i * C + d] * v[j * ld + d];
          ds[i * T + j] = dp;
          rowdot += p[i * T + j] * dp;
        }
        for (int64_t j = 0; j < T; ++j) ds[i * T + j] = p[i * T + j] * (ds[i * T + j] - rowdot);
      }
      for (int64_t j = 0; j < T; ++j) {
        for (int64_t d = 0; d < D; ++d) {
          double gv = 0.0, gk = 0.0;
          for (int64_t i = 0; i < T; ++i) {
            gv += p[i * T + j] * dO[i * C + d];
            gk += ds[i * T + j] * q[i * ld + d];
          }
          dv[j * ld + d] = (float)gv;
          dk[j * ld + d] = (float)(gk * scale);
        }
      }
      for (int64_t i = 0; i < T; ++i) {
        for (int64_t d = 0; d < D; ++d) {
          double gq = 0.0;
          for (int64_t j = 0; j < T; ++j) gq += ds[i * T + j] * k[j * ld + d];
          dq[i * ld + d] = (float)(gq * scale);
        }
      }
    }
  }
}

}  // namespace ref

void attention_forward(const float* qkv, float* out, float* lse, int64_t B, int64_t T, int64_t C,
                       int64_t H, bool causal, const uint8_t* key_mask) {
  check_shape("attention_forward", B, T, C, H);
  if (B == 0 || T == 0 || C == 0) return;
  GANNET_CHECK(qkv && out && lse, "attention_forward: null qkv, out or lse");
  GANNET_DISPATCH(attention_forward, qkv, out, lse, B, T, C, H, causal, key_mask);
}

void attention_backward(const float* qkv, const float* out, const float* dout, const float* lse,
                        float* dqkv, int64_t B, int64_t T, int64_t C, int64_t H, bool causal,
                        const uint8_t* key_mask) {
  check_shape("attention_backward", B, T, C, H);
  if (B == 0 || T == 0 || C == 0) return;
  GANNET_CHECK(qkv && out && dout && lse && dqkv, "attention_backward: null argument");
  GANNET_DISPATCH(attention_backward, qkv, out, dout, lse, dqkv, B, T, C, H, causal, key_mask);
}

}  // namespace gannet::kernels
