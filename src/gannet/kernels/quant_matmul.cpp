#include "gannet/kernels/quant_matmul.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "gannet/core/cpu.h"
#include "gannet/core/error.h"
#include "gannet/core/round_up.h"
#include "gannet/kernels/gelu.h"
#include "gannet/kernels/quantize_rows.h"
#include "gannet/kernels/quantize_rows_int4.h"

namespace gannet::kernels {

namespace {
constexpr int64_t R = kQBlockRows;


// The packed layout's strides (see the header).
struct QLayout {
  int64_t meta, wbytes, group_stride, block_stride;
  int bias;  // 128 or 8: what the stored unsigned values are offset by
  explicit QLayout(const QPackedMatrix& W) : QLayout(W.bits, W.K, W.group, W.asymmetric) {}
  QLayout(int bits, int64_t K, int64_t group, bool asym)
      : meta(asym ? 128 : 64),
        wbytes(bits == 8 ? R * group : R * group / 2),
        group_stride(meta + wbytes),
        block_stride(group > 0 ? K / group * group_stride : 0),
        bias(bits == 8 ? 128 : 8) {}
};

// The stored unsigned value of (block row r, column c of group g) and the row's offset.
struct PackedGroup {
  const uint8_t* base;
  int bits;
  float scale(int r) const {
    float s;
    std::memcpy(&s, base + 4 * r, 4);
    return s;
  }
  int offset(int r, bool asym, int bias) const {
    if (!asym) return bias;
    int32_t o;
    std::memcpy(&o, base + 64 + 4 * r, 4);
    return o;
  }
  int u(const uint8_t* w, int r, int64_t c) const {
    if (bits == 8) return w[(c / 4) * 64 + 4 * r + c % 4];
    const uint8_t byte = w[(c / 8) * 64 + 4 * r + c % 4];
    return (c % 8) < 4 ? (byte & 0x0F) : (byte >> 4);
  }
};

Isa quant_isa() {
  const Isa isa = best_isa();
  if (isa == Isa::avx512 && !cpu_has_avx512_vnni()) return Isa::avx2;
  return isa;
}

void apply(Epilogue e, float v, float* y) {
  if (e == Epilogue::store)
    *y = v;
  else if (e == Epilogue::accumulate)
    *y += v;
  else
    ref::gelu_forward(&v, y, 1);
}

// Thread t's output range of nth: one contiguous range of whole blocks (one weight stream each).
std::pair<int64_t, int64_t> thread_range(int64_t N, int64_t nth, int64_t t) {
  const int64_t chunk = round_up((N + nth - 1) / nth, R);
  const int64_t b = std::min(N, t * chunk);
  return {b, std::min(N, b + chunk)};
}

// Runs body(n_begin, n_end) over N: on the calling thread inside a parallel region or for small
// products, else thread_range's range on each OpenMP thread.
template <class F>
void split_rows(int64_t N, int64_t work, F&& body) {
  if (omp_in_parallel() || N <= R || work < (int64_t(1) << 16)) return body(0, N);
#pragma omp parallel
  {
    const auto [b, end] = thread_range(N, omp_get_num_threads(), omp_get_thread_num());
    if (b < end) body(b, end);
  }
}

// The W8A8 / W4A8 product Y = epilogue(A W^T + b) on the OpenMP threads, one contiguous range of
// whole blocks each (as split_rows cuts them), then finish(b, end, t, nth) on every thread of the
// team once its range is written, inside the same region (b == end for a thread without columns;
// finish may hold a barrier when nth > 1, so every thread calls it). Inside a parallel region or
// for small products everything runs on the calling thread: finish(0, N, 0, 1).
// AVX512-VNNI on several rows: each thread sums and packs its share of the rows' tiles into buffers
// all threads read (rather than every thread packing all of them), then a barrier.
// a8_product's work buffers, the calling thread's (one set, whatever the Finish), lent to its team:
// the rows' group sums, and with shared packing their tiles (aq) and tile sums (as).
struct A8Buffers {
  std::vector<int32_t> asum, aq, as;
  std::vector<int8_t> wide;  // 4-bit rows widened to int8
};
A8Buffers& a8_buffers() {
  thread_local A8Buffers b;
  return b;
}

template <class Finish>
void a8_product(const QuantizedRows& A4, const QPackedMatrix& W, const float* bias, float* Y, int64_t ldy, Epilogue e,
                Finish&& finish) {
  const Isa isa = quant_isa();
  const bool shared = isa == Isa::avx512 && A4.M > 4;
  const int64_t groups = W.K / W.group;
  A8Buffers& buf = a8_buffers();
  if ((int64_t)buf.asum.size() < A4.M * groups) buf.asum.resize(A4.M * groups);
  if (shared && (int64_t)buf.as.size() < A4.M * groups) buf.as.resize(A4.M * groups);
  if (shared && (int64_t)buf.aq.size() < A4.M * W.K / 4) buf.aq.resize(A4.M * W.K / 4);
  // 4-bit rows: packed into the shared tiles from their codes, or else widened to int8 rows in
  // buf.wide as they are prepared (the bodies that read rows read int8).
  const bool wide = A4.bits == 4 && !shared;
  if (wide && (int64_t)buf.wide.size() < A4.M * A4.K) buf.wide.resize(A4.M * A4.K);
  int32_t *sum = buf.asum.data(), *q = buf.aq.data(), *s = buf.as.data();
  const QuantizedRows A = wide ? QuantizedRows{buf.wide.data(), A4.K, A4.scale, A4.M, A4.K} : A4;
  // Rows [m_begin, m_end): widened (4-bit rows), then their group sums (and tiles).
  auto prepare = [&](int64_t m_begin, int64_t m_end) {
    if (m_begin >= m_end) return;
    if (A.bits == 4) return avx512::a8_pack_rows(A, nullptr, W, m_begin, m_end, q, s);
    if (wide) widen_int4_rows(A4, m_begin, m_end, buf.wide.data() + m_begin * A4.K, A4.K);
    const QuantizedRows part{A.q + m_begin * A.ld, A.ld, A.scale + m_begin, m_end - m_begin, A.K};
    activation_group_sums(part, W.group, sum + m_begin * groups);
    if (shared) avx512::a8_pack_rows(A, sum, W, m_begin, m_end, q, s);
  };
  auto range = [&](int64_t b, int64_t end) {
    if (b >= end) return;
    if (shared)
      avx512::quant_matmul_packed_range(A, q, s, W, bias, Y, ldy, e, b, end);
    else if (isa == Isa::avx512)
      avx512::quant_matmul_range(A, sum, W, bias, Y, ldy, e, b, end);
    else if (isa == Isa::avx2)
      avx2::quant_matmul_range(A, sum, W, bias, Y, ldy, e, b, end);
    else
      ref::quant_matmul_range(A, sum, W, bias, Y, ldy, e, b, end);
  };
  if (omp_in_parallel() || W.N <= R || A.M * W.N * W.K < (int64_t(1) << 16)) {
    prepare(0, A.M);
    range(0, W.N);
    return finish(0, W.N, 0, 1);
  }
  if (!shared) prepare(0, A.M);  // a few rows: cheaper than a barrier
#pragma omp parallel
  {
    const int64_t nth = omp_get_num_threads(), t = omp_get_thread_num();
    if (shared) {
      const int64_t tile = avx512::a8_tile_rows(W.bits), tiles = (A.M + tile - 1) / tile;
      prepare(std::min(A.M, tiles * t / nth * tile), std::min(A.M, tiles * (t + 1) / nth * tile));
#pragma omp barrier
    }
    const auto [b, end] = thread_range(W.N, nth, t);
    range(b, end);
    finish(b, end, t, nth);
  }
}
// Throws unless A's sizes and bit width are ones the products take.
void check_rows(const QuantizedRows& A, const char* what) {
  GANNET_CHECK(A.bits == 8 || A.bits == 4, what, ": ", A.bits, "-bit activations (the products take 8 or 4)");
  const int64_t row_bytes = A.bits == 8 ? A.K : (A.K + 1) / 2;
  GANNET_CHECK(A.M >= 0 && A.K >= 0 && A.ld >= row_bytes && (A.bits == 8 || A.K % 2 == 0), what,
               ": bad activation sizes M=", A.M, " K=", A.K, " ld=", A.ld, " (", A.bits, "-bit)");
}
}  // namespace

void check_quant_shape(int bits, int64_t K, int64_t group, const char* what) {
  GANNET_CHECK(bits == 8 || bits == 4, what, ": ", bits, "-bit weights (the integer kernels take 8 or 4)");
  GANNET_CHECK(group > 0 && group % 32 == 0, what, ": group size ", group,
               " is not a positive multiple of 32 (the integer kernels take 32, 64, 128, ... or per-row)");
  GANNET_CHECK(K > 0 && K % group == 0, what, ": K=", K, " is not a multiple of the group size ", group,
               " (the quantizer pads K)");
}

int64_t qpacked_bytes(int bits, int64_t N, int64_t K, int64_t group, bool asymmetric) {
  check_quant_shape(bits, K, group, "qpacked_bytes");
  return round_up(N, R) / R * QLayout(bits, K, group, asymmetric).block_stride;
}

int64_t qpacked_bytes(const QuantizedWeights& w) { return qpacked_bytes(w.bits, w.N, w.K, w.group, w.zero != nullptr); }

QPackedMatrix qpacked_view(const QuantizedWeights& w, const void* data) {
  check_quant_shape(w.bits, w.K, w.group, "qpacked_view");
  return {w.bits, w.N, w.K, w.group, w.zero != nullptr, data};
}

void pack_quantized(const QuantizedWeights& w, void* out) {
  check_quant_shape(w.bits, w.K, w.group, "pack_quantized");
  GANNET_CHECK(w.N >= 0 && w.q && w.scale, "pack_quantized: missing values or scales");
  const bool asym = w.zero != nullptr;
  const QLayout L(w.bits, w.K, w.group, asym);
  const int64_t blocks = round_up(w.N, R) / R, groups = w.K / w.group;
  uint8_t* o = static_cast<uint8_t*>(out);
#pragma omp parallel for schedule(static) if (blocks * L.block_stride > (1 << 20))
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t g = 0; g < groups; ++g) {
      uint8_t* base = o + b * L.block_stride + g * L.group_stride;
      uint8_t* wq = base + L.meta;
      std::memset(wq, 0, L.wbytes);
      for (int r = 0; r < R; ++r) {
        const int64_t n = b * R + r;
        const bool real = n < w.N;
        const int64_t gi = n * groups + g;
        const float s = real ? w.scale[gi] : 0.f;
        const int32_t off = L.bias + (real && asym ? w.zero[gi] : 0);
        std::memcpy(base + 4 * r, &s, 4);
        if (asym) std::memcpy(base + 64 + 4 * r, &off, 4);
        for (int64_t c = 0; c < w.group; ++c) {
          const int u = (real ? w.value(n, g * w.group + c) : 0) + L.bias;
          if (w.bits == 8)
            wq[(c / 4) * 64 + 4 * r + c % 4] = (uint8_t)u;
          else
            wq[(c / 8) * 64 + 4 * r + c % 4] |= (uint8_t)((c % 8) < 4 ? u : u << 4);
        }
      }
    }
  }
}

void unpack_quantized_rows(const QPackedMatrix& W, int64_t r0, int64_t rows, float* out) {
  GANNET_CHECK(r0 >= 0 && rows >= 0 && r0 + rows <= W.N, "unpack_quantized_rows: rows [", r0, ", ", r0 + rows,
               ") outside [0, ", W.N, ")");
  const QLayout L(W);
  const int64_t groups = W.K / W.group;
  const uint8_t* d = static_cast<const uint8_t*>(W.data);
#pragma omp parallel for schedule(static) if (rows * W.K > (1 << 16))
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t n = r0 + i;
    const int r = (int)(n % R);
    for (int64_t g = 0; g < groups; ++g) {
      const PackedGroup pg{d + (n / R) * L.block_stride + g * L.group_stride, W.bits};
      const float s = pg.scale(r);
      const int o = pg.offset(r, W.asymmetric, L.bias);
      for (int64_t c = 0; c < W.group; ++c)
        out[i * W.K + g * W.group + c] = s * (float)(pg.u(pg.base + L.meta, r, c) - o);
    }
  }
}

void activation_group_sums(const QuantizedRows& A, int64_t group, int32_t* asum) {
  const int64_t groups = A.K / group;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && A.M * A.K > (1 << 17))
  for (int64_t m = 0; m < A.M; ++m)
    for (int64_t g = 0; g < groups; ++g) {
      const int8_t* q = A.q + m * A.ld + g * group;
      int32_t s = 0;
      for (int64_t k = 0; k < group; ++k) s += q[k];
      asum[m * groups + g] = s;
    }
}

void activation_group_sums_f32(const float* X, int64_t ldx, int64_t M, int64_t K, int64_t group, float* xsum) {
  const int64_t groups = K / group;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && M * K > (1 << 16))
  for (int64_t m = 0; m < M; ++m)
    for (int64_t g = 0; g < groups; ++g) {
      const float* x = X + m * ldx + g * group;
      float p[8] = {};
      for (int64_t k = 0; k < group; k += 8)
        for (int j = 0; j < 8; ++j) p[j] += x[k + j];
      xsum[m * groups + g] = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    }
}

namespace ref {
void quant_matmul_range(const QuantizedRows& A, const int32_t* asum, const QPackedMatrix& W, const float* bias,
                        float* Y, int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end) {
  const QLayout L(W);
  const int64_t groups = W.K / W.group;
  const uint8_t* d = static_cast<const uint8_t*>(W.data);
  for (int64_t m = 0; m < A.M; ++m) {
    const int8_t* a = A.q + m * A.ld;
    for (int64_t n = n_begin; n < n_end; ++n) {
      const int r = (int)(n % R);
      float acc = 0.f;
      for (int64_t g = 0; g < groups; ++g) {
        const PackedGroup pg{d + (n / R) * L.block_stride + g * L.group_stride, W.bits};
        int64_t dot = 0;  // sum a * u, then the offset correction: sum a * (u - o)
        for (int64_t c = 0; c < W.group; ++c) dot += (int64_t)a[g * W.group + c] * pg.u(pg.base + L.meta, r, c);
        dot -= (int64_t)pg.offset(r, W.asymmetric, L.bias) * asum[m * groups + g];
        acc = std::fma((float)(int32_t)dot, pg.scale(r), acc);
      }
      apply(e, std::fma(acc, A.scale[m], bias ? bias[n] : 0.f), Y + m * ldy + n);
    }
  }
}

void quant_matmul_f32_range(const float* X, int64_t ldx, int64_t M, const float* xsum, const QPackedMatrix& W,
                            const float* bias, float* Y, int64_t ldy, Epilogue e, int64_t n_begin, int64_t n_end) {
  const QLayout L(W);
  const int64_t groups = W.K / W.group;
  const uint8_t* d = static_cast<const uint8_t*>(W.data);
  for (int64_t m = 0; m < M; ++m) {
    const float* x = X + m * ldx;
    for (int64_t n = n_begin; n < n_end; ++n) {
      const int r = (int)(n % R);
      float acc = 0.f;
      for (int64_t g = 0; g < groups; ++g) {
        const PackedGroup pg{d + (n / R) * L.block_stride + g * L.group_stride, W.bits};
        float c[4] = {};
        for (int64_t k = 0; k < W.group; ++k)
          c[k % 4] = std::fma(x[g * W.group + k], (float)pg.u(pg.base + L.meta, r, k), c[k % 4]);
        float t = (c[0] + c[1]) + (c[2] + c[3]);
        t = std::fma(-(float)pg.offset(r, W.asymmetric, L.bias), xsum[m * groups + g], t);
        acc = std::fma(t, pg.scale(r), acc);
      }
      apply(e, acc + (bias ? bias[n] : 0.f), Y + m * ldy + n);
    }
  }
}
}  // namespace ref

void quant_matmul(const QuantizedRows& A, const QPackedMatrix& W, const float* bias, float* Y, int64_t ldy,
                  Epilogue e) {
  check_quant_shape(W.bits, W.K, W.group, "quant_matmul");
  GANNET_CHECK(A.K == W.K, "quant_matmul: activations have K=", A.K, ", weights K=", W.K);
  check_rows(A, "quant_matmul");
  GANNET_CHECK(W.N >= 0 && ldy >= W.N, "quant_matmul: bad sizes N=", W.N, " ldy=", ldy);
  if (A.M == 0 || W.N == 0) return;
  a8_product(A, W, bias, Y, ldy, e, [](int64_t, int64_t, int64_t, int64_t) {});
}

void quant_matmul_gelu_int8(const QuantizedRows& A, const QPackedMatrix& W, const float* bias, float* H, int64_t ldh,
                            float static_scale, int8_t* q, int64_t ldq, float* scales) {
  check_quant_shape(W.bits, W.K, W.group, "quant_matmul_gelu_int8");
  GANNET_CHECK(A.K == W.K, "quant_matmul_gelu_int8: activations have K=", A.K, ", weights K=", W.K);
  check_rows(A, "quant_matmul_gelu_int8");
  GANNET_CHECK(W.N >= 0 && ldh >= W.N && ldq >= W.N, "quant_matmul_gelu_int8: bad sizes N=", W.N, " ldh=", ldh,
               " ldq=", ldq);
  GANNET_CHECK(std::isfinite(static_scale), "quant_matmul_gelu_int8: static scale ", static_scale, " is not finite");
  if (A.M == 0) return;
  const int64_t M = A.M;
  // Per thread: the maxima of its columns of each row [M], then each row's inverse scale [M].
  thread_local std::vector<float> work;
  const int64_t slots = std::max<int64_t>(1, omp_get_max_threads());
  if ((int64_t)work.size() < 2 * slots * M) work.resize(2 * slots * M);
  float* const amax = work.data();
  float* const inv = work.data() + slots * M;
  a8_product(A, W, bias, H, ldh, Epilogue::gelu, [&](int64_t b, int64_t end, int64_t t, int64_t nth) {
    const bool dynamic = static_scale <= 0.f;
    if (dynamic) {
      if (b < end) rows_abs_max(H + b, ldh, M, end - b, amax + t * M);
      else std::fill(amax + t * M, amax + (t + 1) * M, 0.f);
      if (nth > 1) {
#pragma omp barrier
      }
    }
    float* my_inv = inv + t * M;
    for (int64_t m = 0; m < M; ++m) {
      float mx = 0.f;
      for (int64_t u = 0; dynamic && u < nth; ++u) mx = std::max(mx, amax[u * M + m]);
      const RowScale r = row_scale(mx, static_scale);
      my_inv[m] = r.inv;
      if (t == 0) scales[m] = r.scale;
    }
    if (b < end) quantize_rows_inv(H + b, ldh, M, end - b, my_inv, q + b, ldq);
  });
}

void quant_matmul_gelu_int4(const QuantizedRows& A, const QPackedMatrix& W, const float* bias, float* H, int64_t ldh,
                            int64_t Kp, bool asymmetric, float static_scale, uint8_t* q, int64_t ldq, float* scales,
                            uint8_t* zeros) {
  check_quant_shape(W.bits, W.K, W.group, "quant_matmul_gelu_int4");
  GANNET_CHECK(A.K == W.K, "quant_matmul_gelu_int4: activations have K=", A.K, ", weights K=", W.K);
  check_rows(A, "quant_matmul_gelu_int4");
  GANNET_CHECK(W.N >= 0 && ldh >= W.N && Kp >= W.N && Kp % 2 == 0 && 2 * ldq >= Kp,
               "quant_matmul_gelu_int4: bad sizes N=", W.N, " ldh=", ldh, " Kp=", Kp, " ldq=", ldq);
  GANNET_CHECK(std::isfinite(static_scale) && static_scale >= 0.f && !(asymmetric && static_scale > 0.f),
               "quant_matmul_gelu_int4: static scale ", static_scale, " is not a finite non-negative number",
               " (and asymmetric rows are dynamic)");
  GANNET_CHECK(!asymmetric || zeros, "quant_matmul_gelu_int4: asymmetric rows need their zero points");
  if (A.M == 0) return;
  const int64_t M = A.M, N = W.N;
  // Per thread: the extremes of its columns of each row [M] each, then each row's inverse scale
  // and zero point [M] (every thread derives the same ones).
  thread_local std::vector<float> work;
  thread_local std::vector<uint8_t> zero_work;
  const int64_t slots = std::max<int64_t>(1, omp_get_max_threads());
  if ((int64_t)work.size() < 3 * slots * M) work.resize(3 * slots * M);
  if ((int64_t)zero_work.size() < slots * M) zero_work.resize(slots * M);
  float* const lo = work.data();
  float* const hi = lo + slots * M;
  float* const inv = hi + slots * M;
  uint8_t* const zw = zero_work.data();
  a8_product(A, W, bias, H, ldh, Epilogue::gelu, [&](int64_t b, int64_t end, int64_t t, int64_t nth) {
    const bool dynamic = static_scale <= 0.f;
    if (dynamic) {
      if (b < end) rows_min_max(H + b, ldh, M, end - b, lo + t * M, hi + t * M);
      else std::fill(lo + t * M, lo + (t + 1) * M, 0.f), std::fill(hi + t * M, hi + (t + 1) * M, 0.f);
      if (nth > 1) {
#pragma omp barrier
      }
    }
    float* my_inv = inv + t * M;
    uint8_t* my_zero = zw + t * M;
    for (int64_t m = 0; m < M; ++m) {
      float l = 0.f, h = 0.f;
      for (int64_t u = 0; dynamic && u < nth; ++u) l = std::min(l, lo[u * M + m]), h = std::max(h, hi[u * M + m]);
      const Int4RowScale r = int4_row_scale(l, h, asymmetric, static_scale);
      my_inv[m] = r.inv;
      my_zero[m] = (uint8_t)r.zero;
      if (t == 0) scales[m] = r.scale;
      if (t == 0 && zeros) zeros[m] = (uint8_t)r.zero;
    }
    // The range's codes; the range that ends the row also writes the padding codes up to Kp.
    if (b < end) quantize_rows_int4_with(H + b, ldh, M, end - b, end == N ? Kp - b : end - b, asymmetric, my_inv,
                                         my_zero, q + b / 2, ldq);
  });
}

void quant_matmul_f32(const float* X, int64_t ldx, int64_t M, const QPackedMatrix& W, const float* bias, float* Y,
                      int64_t ldy, Epilogue e) {
  check_quant_shape(W.bits, W.K, W.group, "quant_matmul_f32");
  GANNET_CHECK(M >= 0 && W.N >= 0 && ldx >= W.K && ldy >= W.N, "quant_matmul_f32: bad sizes M=", M, " N=", W.N,
               " K=", W.K, " ldx=", ldx, " ldy=", ldy);
  if (M == 0 || W.N == 0) return;
  thread_local std::vector<float> xsum;
  const size_t need = M * (W.K / W.group);
  if (xsum.size() < need) xsum.resize(need);
  activation_group_sums_f32(X, ldx, M, W.K, W.group, xsum.data());
  const float* xs = xsum.data();  // thread_local: the other threads must not name it
  const Isa isa = quant_isa();
  split_rows(W.N, M * W.N * W.K, [&](int64_t b, int64_t end) {
    if (isa == Isa::avx512)
      avx512::quant_matmul_f32_range(X, ldx, M, xs, W, bias, Y, ldy, e, b, end);
    else if (isa == Isa::avx2)
      avx2::quant_matmul_f32_range(X, ldx, M, xs, W, bias, Y, ldy, e, b, end);
    else
      ref::quant_matmul_f32_range(X, ldx, M, xs, W, bias, Y, ldy, e, b, end);
  });
}

}  // namespace gannet::kernels
