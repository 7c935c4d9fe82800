#include "gannet/kernels/nm_sparse_matmul.h"

#include <emmintrin.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "gannet/core/cpu.h"
#include "gannet/core/error.h"
#include "gannet/core/nm_pattern.h"

namespace gannet::kernels {

void check_nm_sparse_product(const QuantizedRows& A, const NmSparseWeights& W, const char* what) {
  NmPattern{W.n, W.m}.validate(what);
  GANNET_CHECK(W.bits == 8 || W.bits == 4, what, ": ", W.bits, "-bit values (8 or 4)");
  GANNET_CHECK(W.N > 0 && W.K > 0 && W.K % W.m == 0 && W.group > 0 && W.group % W.m == 0 && W.K % W.group == 0,
               what, ": a [", W.N, ", ", W.K, "] matrix with groups of ", W.group, " does not fit runs of ", W.m);
  GANNET_CHECK(W.values && W.index && W.scale, what, ": kept values, positions or scales missing");
  GANNET_CHECK(A.K == W.K, what, ": activations have ", A.K, " columns, the weights ", W.K);
  GANNET_CHECK(A.M >= 0 && (A.M == 0 || (A.q && A.scale && A.ld >= A.K)), what, ": bad activation rows (M ", A.M,
               ", stride ", A.ld, ")");
}

bool nm_sparse_packable(const NmSparseWeights& W) { return W.m == 4 && (W.n == 1 || W.n == 2) && W.bits == 8; }

int64_t nm_sparse_packed_bytes(const NmSparseWeights& W) {
  NmSparsePacked p;
  p.n = W.n;
  p.N = W.N;
  p.K = W.K;
  p.group = W.group;
  return p.blocks() * p.block_bytes();
}

NmSparsePacked pack_nm_sparse(const NmSparseWeights& W, void* out) {
  GANNET_CHECK(nm_sparse_packable(W) && W.group % 32 == 0 && W.K % W.group == 0,
               "N:M sparse packing: the vector layout takes n:4 patterns (n 1 or 2) with int8 values and groups "
               "of a multiple of 32, not ",
               W.n, ":", W.m, " int", W.bits, " groups of ", W.group);
  NmSparsePacked p;
  p.n = W.n;
  p.N = W.N;
  p.K = W.K;
  p.group = W.group;
  p.data = out;
  auto* o = static_cast<uint8_t*>(out);
  std::memset(o, 0, (size_t)nm_sparse_packed_bytes(W));
  const int64_t G = W.groups_per_row(), steps = p.steps_per_group(), kept_per_group = steps * 4;
  for (int64_t b = 0; b < p.blocks(); ++b)
    for (int64_t g = 0; g < G; ++g) {
      uint8_t* gp = o + b * p.block_bytes() + g * p.group_bytes();
      uint8_t* values = gp + 64;
      uint8_t* positions = values + steps * 64;
      for (int64_t r = 0; r < 16 && b * 16 + r < W.N; ++r) {
        const int64_t row = b * 16 + r;
        std::memcpy(gp + 4 * r, &W.scale[row * G + g], 4);
        for (int64_t j = 0; j < kept_per_group; ++j) {
          const int64_t kept = g * kept_per_group + j, s = j / 4, i = j % 4;
          values[s * 64 + 4 * r + i] = (uint8_t)(int8_t)W.value(row, kept);
          positions[s * 16 + r] |= (uint8_t)(W.position(row, kept) << (2 * i));
        }
      }
    }
  return p;
}

void nm_sparse_matmul(const QuantizedRows& A, const NmSparsePacked& W, const NmSparseWeights& plain, const float* bias,
                      float* Y, int64_t ldy) {
  check_nm_sparse_product(A, plain, "N:M sparse product");
  GANNET_CHECK(W.n == plain.n && W.N == plain.N && W.K == plain.K && W.group == plain.group && W.data,
               "N:M sparse product: the packed matrix is not the plain one's");
  GANNET_CHECK(ldy >= W.N, "N:M sparse product: output stride ", ldy, " is less than ", W.N, " columns");
  const bool wide = best_isa() == Isa::avx512 && cpu_has_avx512_vnni() && cpu_has_avx512_vbmi_gfni();
  if (!wide && !cpu_has(Isa::avx2)) return ref::nm_sparse_matmul(A, plain, bias, Y, ldy);
  if (A.M == 0) return;
  const int64_t stride = (A.K + 64 + 63) / 64 * 64;
  const uint8_t bias_by = wide ? 128 : 0;
  std::unique_ptr<uint8_t[]> buffer(new uint8_t[(size_t)(A.M * stride + 64)]);
  uint8_t* x = buffer.get() + (64 - (uintptr_t)buffer.get() % 64) % 64;  // rows 64-byte aligned
  auto copy_rows = [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      const int8_t* from = A.q + m * A.ld;
      uint8_t* to = x + m * stride;
      int64_t k = 0;
      for (const __m128i add = _mm_set1_epi8((char)bias_by); k + 16 <= A.K; k += 16)  // SSE2: every x86-64
        _mm_storeu_si128(reinterpret_cast<__m128i*>(to + k),
                         _mm_add_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(from + k)), add));
      for (; k < A.K; ++k) to[k] = (uint8_t)((uint8_t)from[k] + bias_by);
      std::memset(to + A.K, bias_by, (size_t)(stride - A.K));
    }
  };
  const GatherRows rows{x, stride, A.scale, A.M};
  auto range = [&](int64_t b0, int64_t b1) {
    if (wide)
      avx512::nm_sparse_matmul_range(rows, W, bias, Y, ldy, b0, b1);
    else
      avx2::nm_sparse_matmul_range(rows, W, bias, Y, ldy, b0, b1);
  };
  if (omp_in_parallel() || W.blocks() == 1 || A.M * W.N * W.K < (int64_t(1) << 18)) {
    copy_rows(0, A.M);
    return range(0, W.blocks());
  }
#pragma omp parallel
  {
    const int64_t nth = omp_get_num_threads(), t = omp_get_thread_num();
    copy_rows(A.M * t / nth, A.M * (t + 1) / nth);
#pragma omp barrier
    const int64_t b0 = W.blocks() * t / nth, b1 = W.blocks() * (t + 1) / nth;
    if (b0 < b1) range(b0, b1);
  }
}

namespace ref {

void nm_sparse_matmul(const QuantizedRows& A, const NmSparseWeights& W, const float* bias, float* Y, int64_t ldy) {
  check_nm_sparse_product(A, W, "N:M sparse product");
  GANNET_CHECK(ldy >= W.N, "N:M sparse product: output stride ", ldy, " is less than ", W.N, " columns");
  const int64_t G = W.groups_per_row(), kept_per_group = W.group / W.m * W.n;
  for (int64_t m = 0; m < A.M; ++m) {
    const int8_t* a = A.q + m * A.ld;
    for (int64_t r = 0; r < W.N; ++r) {
      float acc = 0.f;
      for (int64_t g = 0; g < G; ++g) {
        int32_t I = 0;
        for (int64_t j = g * kept_per_group; j < (g + 1) * kept_per_group; ++j)
          I += (int32_t)a[W.column(r, j)] * W.value(r, j);
        acc = std::fma((float)I, W.scale[r * G + g], acc);
      }
      Y[m * ldy + r] = std::fma(acc, A.scale[m], bias ? bias[r] : 0.f);
    }
  }
}

}  // namespace ref
}  // namespace gannet::kernels
