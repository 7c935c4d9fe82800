#include "gannet/autograd/graph_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "gannet/autograd/tape.h"
#include "gannet/kernels/neighbour_mean.h"

namespace gannet::autograd {
namespace k = gannet::kernels;

namespace {
// v where keep is true, else +0, without a branch: the masks are random, so a branch would be
// mispredicted half the time (it cost ten times the arithmetic here).
inline float keep_or_zero(float v, bool keep) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  bits &= 0u - (uint32_t)keep;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

bool needs_grad(const Var& x) { return grad_enabled() && x.requires_grad(); }

void check_matrix(const Var& x, const char* op) {
  const Tensor& X = x.value();
  GANNET_CHECK(X.dtype() == DType::f32 && X.ndim() == 2, op, ": input must be a 2-D f32 tensor, got ", X.describe());
}
}  // namespace

Var neighbour_mean(const Var& x, const int64_t* offsets, const int32_t* src, int64_t num_dst) {
  check_matrix(x, "neighbour_mean");
  const int64_t num_src = x.value().dim(0), C = x.value().dim(1);
  GANNET_CHECK(num_dst >= 0, "neighbour_mean: ", num_dst, " destinations");
  k::check_neighbour_lists(offsets, src, num_dst, num_src);
  const bool rg = needs_grad(x);
  Var y(Tensor::empty({num_dst, C}), rg);
  k::neighbour_mean(x.value().f32(), offsets, src, num_dst, C, y.value().f32());
  if (!rg) return y;
  auto lists = std::make_shared<k::TransposedNeighbours>(k::transpose_neighbours(offsets, src, num_dst, num_src));
  tape().record([x, y, lists, C]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    k::neighbour_mean_backward(dY.f32(), *lists, C, sum_target(x).f32());
  });
  return y;
}

Var leading_rows(const Var& x, int64_t n) {
  check_matrix(x, "leading_rows");
  const int64_t rows = x.value().dim(0), C = x.value().dim(1);
  GANNET_CHECK(n >= 0 && n <= rows, "leading_rows: ", n, " rows of ", x.value().describe());
  const bool rg = needs_grad(x);
  Var y(Tensor::empty({n, C}), rg);
  if (n > 0) std::memcpy(y.value().f32(), x.value().f32(), sizeof(float) * n * C);
  if (!rg) return y;
  tape().record([x, y, n, C]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    float* dx = sum_target(x).f32();
    const float* g = dY.f32();
    for (int64_t i = 0; i < n * C; ++i) dx[i] += g[i];
  });
  return y;
}

Var relu(const Var& x) {
  const Tensor& X = x.value();
  GANNET_CHECK(X.dtype() == DType::f32, "relu: input must be f32, got ", X.describe());
  const bool rg = needs_grad(x);
  Var y(Tensor::empty(X.shape()), rg);
  const int64_t n = X.numel();
  const float* in = X.f32();
  float* out = y.value().f32();
#pragma omp parallel for simd schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) out[i] = in[i] > 0.f ? in[i] : 0.f;
  if (!rg) return y;
  tape().record([x, y, n]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    float* dx = sum_target(x).f32();
    const float* g = dY.f32();
    const float* out = y.value().f32();
#pragma omp parallel for simd schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; ++i) dx[i] += keep_or_zero(g[i], out[i] > 0.f);
  });
  return y;
}

namespace {
// out = keep ? f(in) * scale : 0 with the dropout masks of (seed, row, column), and the masks
// into m when given. f is the identity or ReLU.
template <bool kRelu>
void dropout_rows(const float* in, float* out, uint8_t* m, int64_t N, int64_t C, float p, uint64_t seed) {
  const float keep_scale = 1.f / (1.f - p);
  // Four 16-bit uniforms from each 64-bit draw: p is resolved to 1/65536.
  const uint32_t threshold = (uint32_t)std::lround((double)p * 65536.0);
#pragma omp parallel if (N * C > (1 << 15))
  {
    std::vector<uint16_t> u((size_t)(C + 3) & ~size_t{3});
#pragma omp for schedule(static)
    for (int64_t r = 0; r < N; ++r) {
      Rng row(seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(r + 1)));
      for (size_t c = 0; c < u.size(); c += 4) {
        const uint64_t bits = row.next_u64();
        std::memcpy(&u[c], &bits, sizeof bits);  // little-endian: u[c] is the low 16 bits
      }
      const float* x = in + r * C;
      float* y = out + r * C;
      for (int64_t c = 0; c < C; ++c) {
        const float v = kRelu ? std::max(x[c], 0.f) : x[c];
        y[c] = keep_or_zero(v * keep_scale, u[c] >= threshold);
      }
      if (m)
        for (int64_t c = 0; c < C; ++c) m[r * C + c] = u[c] >= threshold;
    }
  }
}
}  // namespace

Var dropout(const Var& x, float p, Rng& rng) {
  check_matrix(x, "dropout");
  GANNET_CHECK(p >= 0.f && p < 1.f, "dropout: probability ", p, " is outside [0, 1)");
  const int64_t N = x.value().dim(0), C = x.value().dim(1);
  const bool rg = needs_grad(x);
  Var y(Tensor::empty({N, C}), rg);
  Tensor mask = Tensor::empty({N, C}, DType::u8);
  const float keep_scale = 1.f / (1.f - p);
  dropout_rows<false>(x.value().f32(), y.value().f32(), mask.data<uint8_t>(), N, C, p, rng.next_u64());
  if (!rg) return y;
  tape().record([x, y, mask, keep_scale]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    float* dx = sum_target(x).f32();
    const float* g = dY.f32();
    const uint8_t* mm = mask.data<uint8_t>();
    const int64_t n = dY.numel();
#pragma omp parallel for simd schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; ++i) dx[i] += keep_or_zero(g[i] * keep_scale, mm[i] != 0);
  });
  return y;
}

Var relu_dropout(const Var& x, float p, Rng& rng) {
  check_matrix(x, "relu_dropout");
  GANNET_CHECK(p >= 0.f && p < 1.f, "relu_dropout: probability ", p, " is outside [0, 1)");
  const int64_t N = x.value().dim(0), C = x.value().dim(1);
  const bool rg = needs_grad(x);
  Var y(Tensor::empty({N, C}), rg);
  const float keep_scale = 1.f / (1.f - p);
  dropout_rows<true>(x.value().f32(), y.value().f32(), nullptr, N, C, p, rng.next_u64());
  if (!rg) return y;
  tape().record([x, y, keep_scale]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    bool accumulate;
    float* dx = grad_for(x, accumulate).f32();  // written, not zeroed and added to, when fresh
    const float* g = dY.f32();
    const float* out = y.value().f32();
    const int64_t n = dY.numel();
    if (accumulate) {
#pragma omp parallel for simd schedule(static) if (n > (1 << 16))
      for (int64_t i = 0; i < n; ++i) dx[i] += keep_or_zero(g[i] * keep_scale, out[i] > 0.f);
    } else {
#pragma omp parallel for simd schedule(static) if (n > (1 << 16))
      for (int64_t i = 0; i < n; ++i) dx[i] = keep_or_zero(g[i] * keep_scale, out[i] > 0.f);
    }
  });
  return y;
}

}  // namespace gannet::autograd
