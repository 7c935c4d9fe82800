#include "gannet/autograd/graph_ops.h"

#include <cstring>
#include <memory>

#include "gannet/autograd/tape.h"
#include "gannet/kernels/neighbour_mean.h"

namespace gannet::autograd {
namespace k = gannet::kernels;

namespace {
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
    for (int64_t i = 0; i < n; ++i) dx[i] += out[i] > 0.f ? g[i] : 0.f;
  });
  return y;
}

Var dropout(const Var& x, float p, Rng& rng) {
  check_matrix(x, "dropout");
  GANNET_CHECK(p >= 0.f && p < 1.f, "dropout: probability ", p, " is outside [0, 1)");
  const int64_t N = x.value().dim(0), C = x.value().dim(1);
  const bool rg = needs_grad(x);
  Var y(Tensor::empty({N, C}), rg);
  Tensor mask = Tensor::empty({N, C}, DType::u8);
  const uint64_t seed = rng.next_u64();
  const float keep_scale = 1.f / (1.f - p);
  const float* in = x.value().f32();
  float* out = y.value().f32();
  uint8_t* m = mask.data<uint8_t>();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    Rng row(seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(r + 1)));
    for (int64_t c = 0; c < C; ++c) {
      const bool keep = row.uniform() >= p;
      m[r * C + c] = keep;
      out[r * C + c] = keep ? in[r * C + c] * keep_scale : 0.f;
    }
  }
  if (!rg) return y;
  tape().record([x, y, mask, keep_scale]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    float* dx = sum_target(x).f32();
    const float* g = dY.f32();
    const uint8_t* mm = mask.data<uint8_t>();
    for (int64_t i = 0; i < dY.numel(); ++i) dx[i] += mm[i] ? g[i] * keep_scale : 0.f;
  });
  return y;
}

}  // namespace gannet::autograd
