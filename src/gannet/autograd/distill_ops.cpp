#include "gannet/autograd/distill_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gannet/autograd/tape.h"
#include "gannet/core/error.h"

namespace gannet::autograd {

namespace {
void check_logits(const Var& student, const Tensor& teacher, const char* op) {
  const Tensor& S = student.value();
  GANNET_CHECK(S.dtype() == DType::f32 && S.ndim() == 2, op, ": student logits must be a 2-D f32 tensor, got ",
               S.describe());
  GANNET_CHECK(teacher.dtype() == DType::f32 && teacher.shape() == S.shape(), op, ": teacher logits ",
               teacher.describe(), " do not match the student's ", S.describe());
}

// Row-wise softmax(logits * inv_t) of logits [R, V] into p (the sum in double); inv_t = 1 gives
// exactly the plain softmax. With log_z, also each row's log normalizer: then
// log p_v = (l_v - max) * inv_t - log_z.
void softmax_rows(const float* logits, int64_t R, int64_t V, float inv_t, float* p, double* log_z = nullptr) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < R; ++r) {
    const float* l = logits + r * V;
    float* o = p + r * V;
    float mx = l[0];
    for (int64_t v = 1; v < V; ++v) mx = std::max(mx, l[v]);
    double z = 0;
    for (int64_t v = 0; v < V; ++v) z += (o[v] = std::exp((l[v] - mx) * inv_t));
    const float inv = (float)(1.0 / z);
    for (int64_t v = 0; v < V; ++v) o[v] *= inv;
    if (log_z) log_z[r] = std::log(z);
  }
}

// -sum_v pt_v log softmax(s * inv_t)_v for one row, given that softmax's log normalizer.
double soft_cross_entropy_row(const float* s, const float* pt, int64_t V, float inv_t, double log_z) {
  const float mx = *std::max_element(s, s + V);
  double dot = 0, mass = 0;
  for (int64_t v = 0; v < V; ++v) {
    dot += (double)pt[v] * ((s[v] - mx) * inv_t);
    mass += pt[v];
  }
  return log_z * mass - dot;
}

// Records d(loss)/d(student) = loss's upstream gradient / divisor * (ps - pt), accumulated per
// grad_for.
void record_softmax_difference(const Var& student, const Var& loss, const Tensor& ps, const Tensor& pt,
                               float divisor) {
  tape().record([student, loss, ps, pt, divisor]() {
    const float s = loss.grad().f32()[0] / divisor;
    bool accumulate;
    Tensor& d = grad_for(student, accumulate);
    const int64_t n = ps.numel();
    for (int64_t i = 0; i < n; ++i) d.f32()[i] = (accumulate ? d.f32()[i] : 0.f) + s * (ps.f32()[i] - pt.f32()[i]);
  });
}
}  // namespace

Var mse(const Var& x, const Tensor& target) {
  const Tensor& X = x.value();
  GANNET_CHECK(X.dtype() == DType::f32 && target.dtype() == DType::f32, "mse: needs f32 tensors, got ", X.describe(),
               " and target ", target.describe());
  check_shape(target, X.shape(), "mse target");
  const int64_t n = X.numel();
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = (double)X.f32()[i] - target.f32()[i];
    s += d * d;
  }
  Var loss(Tensor::full({1}, (float)(s / (double)n)), grad_enabled() && x.requires_grad());
  if (!loss.requires_grad()) return loss;
  tape().record([x, loss, target, n]() {
    const float g = loss.grad().f32()[0] * 2.f / (float)n;
    bool accumulate;
    Tensor& dX = grad_for(x, accumulate);
    const float* a = x.value().f32();
    const float* t = target.f32();
    float* d = dX.f32();
    for (int64_t i = 0; i < n; ++i) d[i] = (accumulate ? d[i] : 0.f) + g * (a[i] - t[i]);
  });
  return loss;
}

Var kl_divergence(const Var& student, const Tensor& teacher) {
  check_logits(student, teacher, "kl_divergence");
  const Tensor& S = student.value();
  const int64_t R = S.dim(0), V = S.dim(1);
  Tensor ps = Tensor::empty({R, V}), pt = Tensor::empty({R, V});
  softmax_rows(S.f32(), R, V, 1.f, ps.f32());
  softmax_rows(teacher.f32(), R, V, 1.f, pt.f32());
  double kl = 0;
  for (int64_t i = 0; i < R * V; ++i) {
    const double t = pt.f32()[i];
    if (t > 0) kl += t * (std::log(t) - std::log(std::max((double)ps.f32()[i], 1e-30)));
  }
  Var loss(Tensor::full({1}, (float)(kl / (double)R)), grad_enabled() && student.requires_grad());
  if (loss.requires_grad()) record_softmax_difference(student, loss, ps, pt, (float)R);
  return loss;
}

Var soft_cross_entropy(const Var& student, const Tensor& teacher, float temperature) {
  check_logits(student, teacher, "soft_cross_entropy");
  GANNET_CHECK(temperature > 0.f && std::isfinite(temperature), "soft_cross_entropy: temperature must be positive, got ",
               temperature);
  const Tensor& S = student.value();
  const int64_t R = S.dim(0), V = S.dim(1);
  const float inv_t = 1.f / temperature;
  Tensor ps = Tensor::empty({R, V}), pt = Tensor::empty({R, V});
  std::vector<double> log_z(R), row_loss(R);
  softmax_rows(teacher.f32(), R, V, inv_t, pt.f32());
  softmax_rows(S.f32(), R, V, inv_t, ps.f32(), log_z.data());
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < R; ++r)
    row_loss[r] = soft_cross_entropy_row(S.f32() + r * V, pt.f32() + r * V, V, inv_t, log_z[r]);
  double sum = 0;
  for (double l : row_loss) sum += l;  // in row order: the same bits whatever the thread count
  Var loss(Tensor::full({1}, (float)(sum / (double)R)), grad_enabled() && student.requires_grad());
  if (loss.requires_grad()) record_softmax_difference(student, loss, ps, pt, (float)R * temperature);
  return loss;
}

}  // namespace gannet::autograd
