#include "gannet/compress/quantizer.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gannet/core/error.h"
#include "gannet/core/limits.h"
#include "gannet/core/rng.h"
#include "gannet/core/round_up.h"
#include "gannet/kernels/quantize_rows_int4.h"

namespace gannet::compress {

namespace {

// The kernels consume input columns in units of 32 (kernels/quant_matmul.h).
constexpr int64_t kColumnUnit = 32;

struct GroupParams {
  float scale;
  int zero;
};

// Scale and zero point of one group of values (padding excluded: it is zero and always fits).
GroupParams group_params(const float* w, int64_t n, const WeightQuantSpec& s) {
  const int qmax = (1 << (s.bits - 1)) - 1, qmin = -(1 << (s.bits - 1));
  if (s.symmetric) {
    float amax = 0.f;
    for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(w[i]));
    return {amax / (float)qmax, 0};
  }
  // The range always holds 0, so that zero (and the padding) is exact and the zero point fits.
  float lo = 0.f, hi = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
  }
  const float scale = (hi - lo) / (float)(qmax - qmin);
  if (scale == 0.f) return {0.f, 0};
  const int zero = std::clamp((int)std::nearbyint((float)qmin - lo / scale), qmin, qmax);
  return {scale, zero};
}

// The integer of value v, rounded to nearest (ties to even) or stochastically.
inline int quantize_value(float v, const GroupParams& p, int qmin, int qmax, Rng* rng) {
  if (p.scale == 0.f) return p.zero;
  const float x = v / p.scale;
  const float r = rng ? std::floor(x + rng->uniform()) : std::nearbyint(x);
  return std::clamp((int)r + p.zero, qmin, qmax);
}

// Quantizes each row; calls put(n, k, q) for every padded column and sets scale/zero per group.
template <class Put>
void quantize_rows(const float* W, int64_t N, int64_t K, const WeightQuantSpec& s, float* scales, int8_t* zeros,
                   Put put) {
  s.validate();
  GANNET_CHECK(N > 0 && K > 0, "quantize weights: empty matrix [", N, ", ", K, "]");
  const int64_t Kp = s.padded_width(K), G = s.group_for(K), groups = Kp / G;
  const int qmax = (1 << (s.bits - 1)) - 1;
  const int qmin = s.symmetric ? -qmax : -(1 << (s.bits - 1));
  // Stochastic rounding draws from one generator per row, so the result does not depend on threads.
#pragma omp parallel for schedule(static) if (N * K > (1 << 16))
  for (int64_t n = 0; n < N; ++n) {
    Rng row_rng(s.seed * 0x9E3779B97F4A7C15ull + (uint64_t)n);
    Rng* rng = s.stochastic ? &row_rng : nullptr;
    const float* row = W + n * K;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t k0 = g * G, count = std::max<int64_t>(0, std::min(K, k0 + G) - k0);
      const GroupParams p = group_params(row + k0, count, s);
      scales[n * groups + g] = p.scale;
      if (zeros) zeros[n * groups + g] = (int8_t)p.zero;
      for (int64_t k = k0; k < k0 + G; ++k)
        put(n, k, k < K ? quantize_value(row[k], p, qmin, qmax, rng) : p.zero);
    }
  }
}
}  // namespace

int64_t WeightQuantSpec::padded_width(int64_t K) const { return round_up(K, group_for(K)); }

int64_t WeightQuantSpec::group_for(int64_t K) const {
  const int64_t row = round_up(K, kColumnUnit);
  return group == 0 || group >= row ? row : group;  // never pad a row up to a wider group
}

void WeightQuantSpec::validate() const {
  GANNET_CHECK(bits == 8 || bits == 4, "weight quantization: ", bits, " bits is not supported (8 or 4)");
  GANNET_CHECK(group == 0 || (group > 0 && group % kColumnUnit == 0 && group <= kMaxQuantGroup),
               "weight quantization: group size ", group, " is not supported (a positive multiple of ", kColumnUnit,
               " up to ", kMaxQuantGroup, ", or 0 for one scale per row)");
}

std::string WeightQuantSpec::describe() const {
  return str("int", bits, group == 0 ? std::string(" per-row") : str(" g", group), symmetric ? " sym" : " asym",
             stochastic ? " stochastic" : "");
}

io::QuantizedTensor quantize_weights(const float* W, int64_t N, int64_t K, const WeightQuantSpec& s) {
  s.validate();
  io::QuantizedTensor t;
  t.bits = s.bits;
  t.rows = N;
  t.in = K;
  t.padded_in = s.padded_width(K);
  t.group = s.group_for(K);
  const int64_t Kp = t.padded_in, groups = Kp / t.group;
  t.scale = Tensor::empty({N, groups});
  if (!s.symmetric) t.zero = Tensor::empty({N, groups}, DType::i8);
  int8_t* zeros = s.symmetric ? nullptr : static_cast<int8_t*>(t.zero.raw());
  if (s.bits == 8) {
    t.q = Tensor::empty({N, Kp}, DType::i8);
    int8_t* q = static_cast<int8_t*>(t.q.raw());
    quantize_rows(W, N, K, s, t.scale.f32(), zeros, [&](int64_t n, int64_t k, int v) { q[n * Kp + k] = (int8_t)v; });
  } else {
    t.q = Tensor::zeros({N, Kp / 2}, DType::u8);
    uint8_t* q = static_cast<uint8_t*>(t.q.raw());
    quantize_rows(W, N, K, s, t.scale.f32(), zeros, [&](int64_t n, int64_t k, int v) {
      const uint8_t nib = (uint8_t)(v & 0x0F);
      uint8_t& b = q[(n * Kp + k) / 2];
      b = (k % 2 == 0) ? (uint8_t)((b & 0xF0) | nib) : (uint8_t)((b & 0x0F) | (nib << 4));
    });
  }
  return t;
}

io::QuantizedTensor quantize_weights(const Tensor& W, const WeightQuantSpec& s) {
  GANNET_CHECK(W.dtype() == DType::f32 && W.ndim() == 2, "quantize weights: expected a 2-D f32 matrix, got ",
               W.describe());
  return quantize_weights(W.f32(), W.dim(0), W.dim(1), s);
}

void fake_quantize_weights(const float* W, int64_t N, int64_t K, const WeightQuantSpec& s, float* out) {
  const int64_t Kp = s.padded_width(K), groups = Kp / s.group_for(K), G = s.group_for(K);
  std::vector<float> scales(N * groups);
  std::vector<int8_t> zeros(N * groups, 0);
  quantize_rows(W, N, K, s, scales.data(), s.symmetric ? nullptr : zeros.data(), [&](int64_t n, int64_t k, int v) {
    if (k < K) {
      const int64_t g = n * groups + k / G;
      out[n * K + k] = scales[g] * (float)(v - zeros[g]);
    }
  });
}

void quantize_activations(const float* X, int64_t M, int64_t K, float static_scale, int8_t* q, float* scales) {
  GANNET_CHECK(static_scale >= 0.f && std::isfinite(static_scale), "activation quantization: static scale ",
               static_scale, " must be finite and >= 0");
  for (int64_t m = 0; m < M; ++m) {
    const float* x = X + m * K;
    // The same float operations as kernels/quantize_rows.h, so that simulated and real
    // quantization agree bitwise.
    float s = static_scale, inv = static_scale > 0.f ? 1.f / static_scale : 0.f;
    if (s == 0.f) {
      float amax = 0.f;
      for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(x[k]));
      s = amax / 127.f;
      inv = amax > 0.f ? 127.f / amax : 0.f;
    }
    if (scales) scales[m] = s;
    if (!q) continue;
    for (int64_t k = 0; k < K; ++k)
      q[m * K + k] = (int8_t)std::nearbyint(std::clamp(x[k] * inv, -127.f, 127.f));
  }
}

void fake_quantize_activations(const float* X, int64_t M, int64_t K, float static_scale, float* out) {
  std::vector<int8_t> q(K);
  for (int64_t m = 0; m < M; ++m) {
    float s = 0.f;
    quantize_activations(X + m * K, 1, K, static_scale, q.data(), &s);
    for (int64_t k = 0; k < K; ++k) out[m * K + k] = s * (float)q[k];
  }
}

void fake_quantize_activations(const float* X, int64_t M, int64_t K, const io::ActivationQuant& a, float* out) {
  GANNET_CHECK(a.quantized, "fake_quantize_activations: the inputs are not quantized (f32)");
  if (a.bits == 8) return fake_quantize_activations(X, M, K, a.static_scale, out);
  GANNET_CHECK(a.bits == 4, "fake_quantize_activations: ", a.bits, "-bit activations (8 or 4)");
  // All rows at once (on the threads), then their values c - z as the products widen them.
  const int64_t Kp = K + K % 2;
  std::vector<uint8_t> q((size_t)(M * Kp / 2)), zero((size_t)M);
  std::vector<float> scale((size_t)M);
  uint8_t* z = a.asymmetric ? zero.data() : nullptr;
  kernels::quantize_rows_int4(X, K, M, K, Kp, a.asymmetric, a.static_scale, q.data(), Kp / 2, scale.data(), z);
  std::vector<int8_t> values((size_t)(M * Kp));
  kernels::widen_int4_rows({reinterpret_cast<const int8_t*>(q.data()), Kp / 2, scale.data(), M, Kp, 4, z}, 0, M,
                           values.data(), Kp);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) out[m * K + k] = scale[(size_t)m] * (float)values[(size_t)(m * Kp + k)];
}

float static_scale_from_max_abs(float max_abs) {
  GANNET_CHECK(std::isfinite(max_abs) && max_abs >= 0.f, "activation calibration: max |x| ", max_abs,
               " is not a finite non-negative number");
  return max_abs > 0.f ? max_abs / 127.f : 1.f / 127.f;
}

}  // namespace gannet::compress
