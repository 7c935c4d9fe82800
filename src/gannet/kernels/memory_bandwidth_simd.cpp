// Vector bodies of the bandwidth probe's read kernels; compiled once per ISA (see core/simd.h).
#include "gannet/core/simd.h"
#include "gannet/kernels/memory_bandwidth.h"

namespace gannet::kernels::GANNET_ISA {
using namespace gannet::simd;

namespace {
constexpr int64_t kLineFloats = 64 / sizeof(float);

// Non-temporal load of W floats (needs a W * 4-byte aligned address).
inline vf load_nontemporal(const float* p) {
#if defined(__AVX512F__)
  return _mm512_castsi512_ps(_mm512_stream_load_si512(const_cast<float*>(p)));
#else
  return _mm256_castsi256_ps(_mm256_stream_load_si256(reinterpret_cast<const __m256i*>(p)));
#endif
}

// Sum of x[0, done), four vectors (one or more cache lines) at a time, done the largest multiple of
// 4 W not above n; `ahead` floats ahead of each line a prefetch with `Hint` (ahead 0: none).
template <decltype(_MM_HINT_T0) Hint, bool NonTemporal>  // _mm_hint in GCC, int in clang
float lines(const float* x, int64_t n, int64_t ahead, int64_t& done) {
  vf a0 = zero(), a1 = zero(), a2 = zero(), a3 = zero();
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    if (ahead > 0)
      for (int64_t l = 0; l < 4 * W; l += kLineFloats)
        _mm_prefetch(reinterpret_cast<const char*>(x + i + l + ahead), Hint);
    if constexpr (NonTemporal) {
      a0 = add(a0, load_nontemporal(x + i));
      a1 = add(a1, load_nontemporal(x + i + W));
      a2 = add(a2, load_nontemporal(x + i + 2 * W));
      a3 = add(a3, load_nontemporal(x + i + 3 * W));
    } else {
      a0 = add(a0, load(x + i));
      a1 = add(a1, load(x + i + W));
      a2 = add(a2, load(x + i + 2 * W));
      a3 = add(a3, load(x + i + 3 * W));
    }
  }
  done = i;
  return reduce_add(add(add(a0, a1), add(a2, a3)));
}

float scalar_sum(const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}

// The n floats in 4 contiguous pieces, one vector of each in turn.
float four_streams(const float* x, int64_t n) {
  const int64_t piece = n / 4 / W * W;
  const float* p[4] = {x, x + piece, x + 2 * piece, x + 3 * piece};
  vf a[4] = {zero(), zero(), zero(), zero()};
  for (int64_t i = 0; i < piece; i += W)
    for (int s = 0; s < 4; ++s) a[s] = add(a[s], load(p[s] + i));
  return reduce_add(add(add(a[0], a[1]), add(a[2], a[3]))) + scalar_sum(x + 4 * piece, n - 4 * piece);
}

// Non-temporal loads need aligned addresses: the floats before the first aligned one are summed plainly.
float nontemporal(const float* x, int64_t n) {
  int64_t head = 0;
  while (head < n && reinterpret_cast<uintptr_t>(x + head) % (W * sizeof(float)) != 0) ++head;
  int64_t done = 0;
  const float s = lines<_MM_HINT_NTA, true>(x + head, n - head, 0, done);
  return scalar_sum(x, head) + s + scalar_sum(x + head + done, n - head - done);
}
}  // namespace

float read_sum(ReadKernel k, const float* x, int64_t n) {
  int64_t done = 0;
  float s = 0;
  switch (k) {
    case ReadKernel::streams: return four_streams(x, n);
    case ReadKernel::nontemporal: return nontemporal(x, n);
    case ReadKernel::prefetch_l2: s = lines<_MM_HINT_T1, false>(x, n, 4096 / sizeof(float), done); break;
    case ReadKernel::prefetch_l1: s = lines<_MM_HINT_T0, false>(x, n, 1024 / sizeof(float), done); break;
    case ReadKernel::plain: s = lines<_MM_HINT_T0, false>(x, n, 0, done); break;
  }
  return s + scalar_sum(x + done, n - done);
}

}  // namespace gannet::kernels::GANNET_ISA
