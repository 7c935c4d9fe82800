// Fused attention, forward and backward; compiled once per ISA (see core/simd.h). The block
// products go to OpenBLAS's sgemm, called inside our OpenMP region so that each runs
// single-threaded on the calling thread; the masking, softmax and elementwise parts are vector
// code here.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "gannet/core/round_up.h"
#include "gannet/core/simd.h"
#include "gannet/kernels/attention.h"

namespace gannet::kernels::GANNET_ISA {
using namespace gannet::simd;

namespace {

constexpr int64_t kBq = 64;   // query rows per block
constexpr int64_t kBk = 256;  // keys per block (a multiple of kBq)
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// v where x > -inf, else 0 (exp of a masked score must be exactly 0, not the clamped exp's 1e-38).
inline vf keep_finite(vf v, vf x) {
#if defined(__AVX512F__)
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, set1(kNegInf), _CMP_NEQ_OQ), v);
#else
  return _mm256_and_ps(v, _mm256_cmp_ps(x, set1(kNegInf), _CMP_NEQ_OQ));
#endif
}

// Per-thread scratch that grows and is kept between calls.
struct Scratch {
  float* p = nullptr;
  size_t n = 0;
  ~Scratch() { std::free(p); }
  float* get(size_t want) {
    if (want > n) {
      std::free(p);
      size_t bytes = (want * sizeof(float) + 63) / 64 * 64;
      p = (float*)std::aligned_alloc(64, bytes);
      if (!p) throw std::bad_alloc();
      n = bytes / sizeof(float);
    }
    return p;
  }
};
thread_local Scratch tls_scratch;


inline void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* Cm, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M,
              (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, Cm, (int)ldc);
}

inline void fill(float* p, int64_t n, float x) {
  int64_t j = 0;
  for (; j + W <= n; j += W) store(p + j, set1(x));
  if (j < n) store_partial(p + j, set1(x), (int)(n - j));
}

inline void scale_row(float* p, int64_t n, float s) {
  int64_t j = 0;
  vf vs = set1(s);
  for (; j + W <= n; j += W) store(p + j, mul(load(p + j), vs));
  if (j < n) store_partial(p + j, mul(load_partial(p + j, (int)(n - j)), vs), (int)(n - j));
}

inline float dot(const float* a, const float* b, int64_t n) {
  vf acc = zero();
  int64_t j = 0;
  for (; j + W <= n; j += W) acc = fmadd(load(a + j), load(b + j), acc);
  if (j < n) acc = fmadd(load_partial(a + j, (int)(n - j)), load_partial(b + j, (int)(n - j)), acc);
  return reduce_add(acc);
}

// Additive mask of keys [j0, j0 + nk): 0 for a valid key, -inf for padding. Returns whether any
// key of the block is valid.
inline bool key_bias(const uint8_t* mask, int64_t nk, float* bias) {
  bool any = false;
  for (int64_t j = 0; j < nk; ++j) {
    bias[j] = mask[j] ? 0.f : kNegInf;
    any |= mask[j] != 0;
  }
  return any;
}

// Adds bias (if any) to row[0, lim) in place and returns the row's maximum over [0, lim).
inline float bias_max(float* row, const float* bias, int64_t lim) {
  vf vm = set1(kNegInf);
  int64_t j = 0;
  if (bias) {
    for (; j + W <= lim; j += W) {
      vf x = add(load(row + j), load(bias + j));
      store(row + j, x);
      vm = max(vm, x);
    }
    if (j < lim) {
      int r = (int)(lim - j);
      vf x = add(load_partial(row + j, r, kNegInf), load_partial(bias + j, r));
      store_partial(row + j, x, r);
      vm = max(vm, x);
    }
  } else {
    for (; j + W <= lim; j += W) vm = max(vm, load(row + j));
    if (j < lim) vm = max(vm, load_partial(row + j, (int)(lim - j), kNegInf));
  }
  return reduce_max(vm);
}

// row[j] = exp(row[j] + bias[j] - shift) for j < lim (0 where the score is -inf), 0 for lim <= j < n.
// Returns the sum of the new row. With add_bias false the bias is already in the row.
inline float exp_row(float* row, const float* bias, bool add_bias, int64_t lim, int64_t n, float shift) {
  vf vsub = set1(shift), vsum = zero();
  int64_t j = 0;
  for (; j + W <= lim; j += W) {
    vf x = load(row + j);
    if (add_bias && bias) x = add(x, load(bias + j));
    vf e = keep_finite(exp(sub(x, vsub)), x);
    store(row + j, e);
    vsum = add(vsum, e);
  }
  if (j < lim) {
    int r = (int)(lim - j);
    vf x = load_partial(row + j, r, kNegInf);
    if (add_bias && bias) x = add(x, load_partial(bias + j, r));
    vf e = keep_finite(exp(sub(x, vsub)), x);
    store_partial(row + j, e, r);
    vsum = add(vsum, e);
  }
  if (lim < n) fill(row + lim, n - lim, 0.f);
  return reduce_add(vsum);
}


// Forward of query rows [i0, i0 + nq) of head h in batch b.
void forward_block(const float* qkv, float* out, float* lse, int64_t b, int64_t h, int64_t i0,
                   int64_t nq, int64_t T, int64_t C, int64_t H, bool causal, const uint8_t* key_mask) {
  const int64_t D = C / H, ld = 3 * C, ldS = round_up(std::min(kBk, T), 16);
  const float scale = 1.f / std::sqrt((float)D);
  float* S = tls_scratch.get(kBq * ldS + 3 * kBq + ldS);
  float *m = S + kBq * ldS, *l = m + kBq, *fac = l + kBq, *bias_buf = fac + kBq;
  const float* q = qkv + (b * T + i0) * ld + h * D;
  const float* k = qkv + b * T * ld + C + h * D;
  const float* v = k + C;
  float* o = out + (b * T + i0) * C + h * D;
  const int64_t kend = causal ? i0 + nq : T;
  for (int64_t r = 0; r < nq; ++r) m[r] = kNegInf, l[r] = 0.f;
  bool first = true;
  for (int64_t j0 = 0; j0 < kend; j0 += kBk) {
    const int64_t nk = std::min(kBk, kend - j0);
    const float* bias = nullptr;
    if (key_mask) {
      if (!key_bias(key_mask + b * T + j0, nk, bias_buf)) continue;
      bias = bias_buf;
    }
    sgemm(false, true, nq, nk, D, scale, q, ld, k + j0 * ld, ld, 0.f, S, ldS);
    for (int64_t r = 0; r < nq; ++r) {
      float* row = S + r * ldS;
      const int64_t lim = causal ? std::min(nk, i0 + r + 1 - j0) : nk;
      fac[r] = 1.f;
      if (lim <= 0) {
        fill(row, nk, 0.f);
        continue;
      }
      const float mnew = std::max(m[r], bias_max(row, bias, lim));
      if (mnew == kNegInf) {  // no valid key so far
        fill(row, nk, 0.f);
        continue;
      }
      fac[r] = m[r] == kNegInf ? 0.f : std::exp(m[r] - mnew);
      const float sum = exp_row(row, bias, false, lim, nk, mnew);
      l[r] = l[r] * fac[r] + sum;
      m[r] = mnew;
    }
    if (!first) {
      for (int64_t r = 0; r < nq; ++r)
        if (fac[r] != 1.f) scale_row(o + r * C, D, fac[r]);
    }
    sgemm(false, false, nq, D, nk, 1.f, S, ldS, v + j0 * ld, ld, first ? 0.f : 1.f, o, C);
    first = false;
  }
  float* lrow = lse + (b * H + h) * T + i0;
  for (int64_t r = 0; r < nq; ++r) {
    if (l[r] == 0.f) {
      fill(o + r * C, D, 0.f);
      lrow[r] = kNegInf;
    } else {
      scale_row(o + r * C, D, 1.f / l[r]);
      lrow[r] = m[r] + std::log(l[r]);
    }
  }
}

// Backward of head h in batch b: dq, dk, dv of the head are written here and nowhere else.
void backward_head(const float* qkv, const float* out, const float* dout, const float* lse,
                   float* dqkv, int64_t b, int64_t h, int64_t T, int64_t C, int64_t H, bool causal,
                   const uint8_t* key_mask) {
  const int64_t D = C / H, ld = 3 * C, ldS = round_up(std::min(kBk, T), 16);
  const float scale = 1.f / std::sqrt((float)D);
  float* P = tls_scratch.get(2 * kBq * ldS + ldS + T);
  float *dS = P + kBq * ldS, *bias_buf = dS + kBq * ldS, *delta = bias_buf + ldS;
  const float* q = qkv + b * T * ld + h * D;
  const float* k = q + C;
  const float* v = q + 2 * C;
  const float* o = out + b * T * C + h * D;
  const float* dO = dout + b * T * C + h * D;
  const float* L = lse + (b * H + h) * T;
  float* dq = dqkv + b * T * ld + h * D;
  float* dk = dq + C;
  float* dv = dq + 2 * C;
  for (int64_t t = 0; t < T; ++t) {
    fill(dq + t * ld, D, 0.f);
    fill(dk + t * ld, D, 0.f);
    fill(dv + t * ld, D, 0.f);
    delta[t] = dot(dO + t * C, o + t * C, D);
  }
  for (int64_t i0 = 0; i0 < T; i0 += kBq) {
    const int64_t nq = std::min(kBq, T - i0);
    const int64_t kend = causal ? i0 + nq : T;
    for (int64_t j0 = 0; j0 < kend; j0 += kBk) {
      const int64_t nk = std::min(kBk, kend - j0);
      const float* bias = nullptr;
      if (key_mask) {
        if (!key_bias(key_mask + b * T + j0, nk, bias_buf)) continue;
        bias = bias_buf;
      }
      // P = exp(scale Q K^T + mask - lse)
      sgemm(false, true, nq, nk, D, scale, q + i0 * ld, ld, k + j0 * ld, ld, 0.f, P, ldS);
      for (int64_t r = 0; r < nq; ++r) {
        const int64_t lim = causal ? std::min(nk, i0 + r + 1 - j0) : nk;
        float* row = P + r * ldS;
        if (lim <= 0 || L[i0 + r] == kNegInf) fill(row, nk, 0.f);
        else exp_row(row, bias, true, lim, nk, L[i0 + r]);
      }
      // dV += P^T dO;  dP = dO V^T
      sgemm(true, false, nk, D, nq, 1.f, P, ldS, dO + i0 * C, C, 1.f, dv + j0 * ld, ld);
      sgemm(false, true, nq, nk, D, 1.f, dO + i0 * C, C, v + j0 * ld, ld, 0.f, dS, ldS);
      // dS = P (dP - Delta)
      for (int64_t r = 0; r < nq; ++r) {
        float *prow = P + r * ldS, *drow = dS + r * ldS;
        vf dl = set1(delta[i0 + r]);
        int64_t j = 0;
        for (; j + W <= nk; j += W) store(drow + j, mul(load(prow + j), sub(load(drow + j), dl)));
        if (j < nk) {
          int n = (int)(nk - j);
          store_partial(drow + j, mul(load_partial(prow + j, n), sub(load_partial(drow + j, n), dl)), n);
        }
      }
      // dQ += scale dS K;  dK += scale dS^T Q
      sgemm(false, false, nq, D, nk, scale, dS, ldS, k + j0 * ld, ld, 1.f, dq + i0 * ld, ld);
      sgemm(true, false, nk, D, nq, scale, dS, ldS, q + i0 * ld, ld, 1.f, dk + j0 * ld, ld);
    }
  }
}

}  // namespace

void attention_forward(const float* qkv, float* out, float* lse, int64_t B, int64_t T, int64_t C,
                       int64_t H, bool causal, const uint8_t* key_mask) {
  const int64_t nqb = (T + kBq - 1) / kBq, BH = B * H, ntasks = BH * nqb;
  // Largest query blocks (the most keys when causal) first, for the dynamic schedule.
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t t = 0; t < ntasks; ++t) {
    const int64_t qb = nqb - 1 - t / BH, bh = t % BH;
    const int64_t i0 = qb * kBq;
    forward_block(qkv, out, lse, bh / H, bh % H, i0, std::min(kBq, T - i0), T, C, H, causal, key_mask);
  }
}

void attention_backward(const float* qkv, const float* out, const float* dout, const float* lse,
                        float* dqkv, int64_t B, int64_t T, int64_t C, int64_t H, bool causal,
                        const uint8_t* key_mask) {
  const int64_t BH = B * H;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t bh = 0; bh < BH; ++bh)
    backward_head(qkv, out, dout, lse, dqkv, bh / H, bh % H, T, C, H, causal, key_mask);
}

}  // namespace gannet::kernels::GANNET_ISA
