#include "gannet/autograd/moe_ops.h"

#include <cfloat>
#include <cmath>

#include "gannet/autograd/tape.h"
#include "gannet/core/parallel_errors.h"
#include "gannet/kernels/bias.h"
#include "gannet/kernels/gelu.h"
#include "gannet/kernels/gemm.h"
#include "gannet/kernels/moe_dispatch.h"
#include "gannet/kernels/softmax.h"
#include "gannet/kernels/token_gather.h"

namespace gannet::autograd {
namespace k = gannet::kernels;
using RoutingPtr = std::shared_ptr<const k::MoeRouting>;

namespace {
void check_2d(const Tensor& t, const char* op, const char* what) {
  GANNET_CHECK(t.dtype() == DType::f32 && t.ndim() == 2, op, ": ", what, " must be a 2-D f32 tensor, got ",
               t.describe());
}

// Runs fn(e) for every expert with rows. With several experts per thread, the experts run in
// parallel, each product on one thread (OpenBLAS runs single-threaded inside a parallel region),
// which suits the experts' short GEMMs better than threading each one; with few experts, one
// after another on threaded GEMMs.
template <typename Fn>
void for_each_expert(const std::vector<int32_t>& offsets, Fn fn) {
  const int64_t E = (int64_t)offsets.size() - 1;
  if (E >= 2 * (int64_t)k::num_threads()) {
    ParallelErrors errors;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t e = 0; e < E; ++e)
      if (offsets[(size_t)e + 1] > offsets[(size_t)e])
        errors.run([&] { fn(e, (int64_t)offsets[(size_t)e], (int64_t)(offsets[(size_t)e + 1] - offsets[(size_t)e])); });
    errors.rethrow();
  } else {
    for (int64_t e = 0; e < E; ++e)
      if (offsets[(size_t)e + 1] > offsets[(size_t)e]) fn(e, (int64_t)offsets[(size_t)e], (int64_t)(offsets[(size_t)e + 1] - offsets[(size_t)e]));
  }
}

Var scalar_var(double value, bool requires_grad) {
  Tensor t = Tensor::empty({1});
  t.f32()[0] = (float)value;
  return Var(t, requires_grad);
}
}  // namespace

RouterResult moe_router(const Var& logits, const RouterOptions& o) {
  const Tensor& L = logits.value();
  check_2d(L, "moe_router", "logits");
  const int64_t N = L.dim(0), E = L.dim(1);
  GANNET_CHECK(o.expert_choice || (o.k >= 1 && o.k <= E), "moe_router: k ", o.k, " must be in [1, ", E, "]");
  Tensor P = Tensor::empty({N, E});
  k::softmax_forward(L.f32(), P.f32(), N, E);
  const float* p = P.f32();
  Tensor lse = Tensor::empty({N});
  double z_sum = 0;
  for (int64_t n = 0; n < N; ++n) {
    const float* row = L.f32() + n * E;
    float mx = row[0];
    for (int64_t e = 1; e < E; ++e) mx = std::max(mx, row[e]);
    double s = 0;
    for (int64_t e = 0; e < E; ++e) s += std::exp((double)row[e] - mx);
    double v = mx + std::log(s);
    lse.f32()[n] = (float)v;
    z_sum += v * v;
  }

  auto routing = std::make_shared<k::MoeRouting>();
  if (o.expert_choice) {
    k::route_expert_choice(p, N, E, o.capacity, *routing);
  } else {
    const float* scores = p;
    Tensor noisy;
    if (o.selection_noise.defined()) {
      GANNET_CHECK(o.selection_noise.shape() == L.shape(), "moe_router: selection noise ",
                   o.selection_noise.describe(), " does not match logits ", L.describe());
      noisy = Tensor::empty({N, E});
      k::add(L.f32(), o.selection_noise.f32(), noisy.f32(), N * E);
      scores = noisy.f32();
    }
    const float* priority = nullptr;
    if (o.priority.defined()) {
      GANNET_CHECK(o.priority.numel() == N, "moe_router: priorities ", o.priority.describe(), " are not one per token");
      priority = o.priority.f32();
    }
    k::route_top_k(scores, N, E, o.k, o.capacity, priority, *routing);
  }
  const int64_t S = routing->slots();
  std::vector<int32_t> slot_expert((size_t)S);
  for (int64_t e = 0; e < E; ++e)
    for (int32_t s = routing->offsets[(size_t)e]; s < routing->offsets[(size_t)e + 1]; ++s) slot_expert[(size_t)s] = (int32_t)e;

  const bool rg = grad_enabled() && logits.requires_grad();
  RouterResult r;
  r.routing = routing;
  r.probs = P;
  r.gates = Var(Tensor::empty({S}), rg);
  float* g = r.gates.value().f32();
  std::vector<float> denom((size_t)N, 1.f);
  for (int64_t n = 0; n < N; ++n) {
    if (o.normalize_gates) {
      float d = 0;
      for (int32_t i = routing->token_offsets[(size_t)n]; i < routing->token_offsets[(size_t)n + 1]; ++i) {
        int32_t s = routing->token_slots[(size_t)i];
        d += p[n * E + slot_expert[(size_t)s]];
      }
      denom[(size_t)n] = std::max(d, FLT_EPSILON);
    }
    for (int32_t i = routing->token_offsets[(size_t)n]; i < routing->token_offsets[(size_t)n + 1]; ++i) {
      int32_t s = routing->token_slots[(size_t)i];
      g[s] = p[n * E + slot_expert[(size_t)s]] / denom[(size_t)n];
    }
  }
  double balance = 0;
  if (!o.expert_choice) {
    for (int64_t e = 0; e < E; ++e) {
      double me = 0;
      for (int64_t n = 0; n < N; ++n) me += p[n * E + e];
      balance += (me / (double)N) * ((double)routing->demand[(size_t)e] / (double)N);
    }
    balance *= (double)E / (double)o.k;
  }
  r.balance_loss = scalar_var(balance, rg && !o.expert_choice);
  r.z_loss = scalar_var(N ? z_sum / (double)N : 0.0, rg);
  if (!rg) return r;

  Var gates = r.gates, bal = r.balance_loss, z = r.z_loss;
  const bool normalize = o.normalize_gates;
  const double bal_scale = o.expert_choice ? 0.0 : (double)E / (double)o.k;
  tape().record([logits, gates, bal, z, P, lse, routing, slot_expert, denom, normalize, bal_scale, N, E]() {
    const bool has_g = gates.grad().defined(), has_b = bal.grad().defined() && bal_scale > 0,
               has_z = z.grad().defined();
    if (!has_g && !has_b && !has_z) return;
    const float* p = P.f32();
    Tensor dP = Tensor::zeros({N, E});
    float* dp = dP.f32();
    if (has_g) {
      const float* dg = gates.grad().f32();
      const float* gv = gates.value().f32();
      for (int64_t n = 0; n < N; ++n) {
        const int32_t b = routing->token_offsets[(size_t)n], e_ = routing->token_offsets[(size_t)n + 1];
        float sdg = 0;
        if (normalize)
          for (int32_t i = b; i < e_; ++i) sdg += dg[routing->token_slots[(size_t)i]] * gv[routing->token_slots[(size_t)i]];
        for (int32_t i = b; i < e_; ++i) {
          const int32_t s = routing->token_slots[(size_t)i];
          dp[n * E + slot_expert[(size_t)s]] += normalize ? (dg[s] - sdg) / denom[(size_t)n] : dg[s];
        }
      }
    }
    if (has_b) {
      const double c = (double)bal.grad().f32()[0] * bal_scale / ((double)N * (double)N);
      for (int64_t e = 0; e < E; ++e) {
        const float v = (float)(c * (double)routing->demand[(size_t)e]);
        for (int64_t n = 0; n < N; ++n) dp[n * E + e] += v;
      }
    }
    Tensor dL = Tensor::empty({N, E});
    k::softmax_backward(p, dp, dL.f32(), N, E);
    if (has_z) {
      const float c = 2.f * z.grad().f32()[0] / (float)N;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t e = 0; e < E; ++e) dL.f32()[n * E + e] += c * lse.f32()[n] * p[n * E + e];
    }
    deposit_grad(logits, dL);
  });
  return r;
}

Var moe_dispatch(const Var& x, RoutingPtr routing) {
  check_2d(x.value(), "moe_dispatch", "input");
  const int64_t N = x.value().dim(0), C = x.value().dim(1), S = routing->slots();
  GANNET_CHECK(routing->tokens == N, "moe_dispatch: routing for ", routing->tokens, " tokens, input has ", N);
  const bool rg = grad_enabled() && x.requires_grad();
  Var y(Tensor::empty({S, C}), rg);
  k::gather_rows(x.value().f32(), routing->slot_token.data(), S, C, y.value().f32());
  if (!rg) return y;
  tape().record([x, y, routing, N, C]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    bool acc;
    Tensor& dX = grad_for(x, acc);
    k::combine_rows(dY.f32(), nullptr, routing->token_offsets.data(), routing->token_slots.data(), N, C, acc,
                    dX.f32());
  });
  return y;
}

Var moe_combine(const Var& y, const Var& gates, RoutingPtr routing) {
  check_2d(y.value(), "moe_combine", "expert output");
  const int64_t S = routing->slots(), N = routing->tokens, C = y.value().dim(1);
  GANNET_CHECK(y.value().dim(0) == S && gates.value().numel() == S, "moe_combine: expert output ",
               y.value().describe(), " and gates ", gates.value().describe(), " do not match ", S, " slots");
  const bool rg = grad_enabled() && (y.requires_grad() || gates.requires_grad());
  Var out(Tensor::empty({N, C}), rg);
  k::combine_rows(y.value().f32(), gates.value().f32(), routing->token_offsets.data(), routing->token_slots.data(), N,
                  C, false, out.value().f32());
  if (!rg) return out;
  tape().record([y, gates, out, routing, S, C]() {
    const Tensor& dO = out.grad();
    if (!dO.defined()) return;
    if (y.requires_grad()) {
      Tensor dY = Tensor::empty({S, C});
      k::scaled_gather_rows(dO.f32(), routing->slot_token.data(), gates.value().f32(), S, C, dY.f32());
      deposit_grad(y, dY);
    }
    if (gates.requires_grad()) {
      Tensor dG = Tensor::empty({S});
      k::gathered_row_dots(dO.f32(), routing->slot_token.data(), y.value().f32(), S, C, dG.f32());
      deposit_grad(gates, dG);
    }
  });
  return out;
}

Var expert_mlp(const Var& x, const std::vector<int32_t>& offsets, const Var& w1, const Var& b1, const Var& w2,
               const Var& b2) {
  check_2d(x.value(), "expert_mlp", "input");
  const int64_t S = x.value().dim(0), C = x.value().dim(1);
  GANNET_CHECK(w1.value().ndim() == 3, "expert_mlp: c_fc weight must be [E, H, C], got ", w1.value().describe());
  const int64_t E = w1.value().dim(0), H = w1.value().dim(1);
  check_shape(w1.value(), {E, H, C}, "expert c_fc weight");
  check_shape(b1.value(), {E, H}, "expert c_fc bias");
  check_shape(w2.value(), {E, C, H}, "expert c_proj weight");
  check_shape(b2.value(), {E, C}, "expert c_proj bias");
  GANNET_CHECK((int64_t)offsets.size() == E + 1 && offsets.front() == 0 && offsets.back() == S,
               "expert_mlp: expert offsets do not cover the ", S, " slot rows of ", E, " experts");
  const bool rg = grad_enabled() &&
                  (x.requires_grad() || w1.requires_grad() || b1.requires_grad() || w2.requires_grad() || b2.requires_grad());
  Tensor pre = Tensor::empty({S, H}), act = Tensor::empty({S, H});
  Var y(Tensor::empty({S, C}), rg);
  const float *X = x.value().f32(), *W1 = w1.value().f32(), *B1 = b1.value().f32(), *W2 = w2.value().f32(),
              *B2 = b2.value().f32();
  float* Y = y.value().f32();
  for_each_expert(offsets, [&](int64_t e, int64_t r0, int64_t M) {
    k::gemm(false, true, M, H, C, 1.f, X + r0 * C, C, W1 + e * H * C, C, 0.f, pre.f32() + r0 * H, H);
    k::add_bias(pre.f32() + r0 * H, B1 + e * H, M, H);
    k::gelu_forward(pre.f32() + r0 * H, act.f32() + r0 * H, M * H);
    k::gemm(false, true, M, C, H, 1.f, act.f32() + r0 * H, H, W2 + e * C * H, H, 0.f, Y + r0 * C, C);
    k::add_bias(Y + r0 * C, B2 + e * C, M, C);
  });
  if (!rg) return y;
  tape().record([x, w1, b1, w2, b2, y, pre, act, offsets, S, C, H]() {
    const Tensor& dYt = y.grad();
    if (!dYt.defined()) return;
    const float* dY = dYt.f32();
    float* dW2 = w2.requires_grad() ? sum_target(w2).f32() : nullptr;
    float* dB2 = b2.requires_grad() ? sum_target(b2).f32() : nullptr;
    float* dW1 = w1.requires_grad() ? sum_target(w1).f32() : nullptr;
    float* dB1 = b1.requires_grad() ? sum_target(b1).f32() : nullptr;
    Tensor dH = Tensor::empty({S, H});
    bool acc_x = false;
    float* dX = x.requires_grad() ? grad_for(x, acc_x).f32() : nullptr;
    const float beta_x = acc_x ? 1.f : 0.f;
    for_each_expert(offsets, [&](int64_t e, int64_t r0, int64_t M) {
      float* dP = dH.f32() + r0 * H;
      if (dW2) k::gemm(true, false, C, H, M, 1.f, dY + r0 * C, C, act.f32() + r0 * H, H, 1.f, dW2 + e * C * H, H);
      if (dB2) k::bias_grad(dY + r0 * C, dB2 + e * C, M, C);
      k::gemm(false, false, M, H, C, 1.f, dY + r0 * C, C, w2.value().f32() + e * C * H, H, 0.f, dP, H);
      k::gelu_backward(pre.f32() + r0 * H, dP, dP, M * H);
      if (dW1) k::gemm(true, false, H, C, M, 1.f, dP, H, x.value().f32() + r0 * C, C, 1.f, dW1 + e * H * C, C);
      if (dB1) k::bias_grad(dP, dB1 + e * H, M, H);
      if (dX) k::gemm(false, false, M, C, H, 1.f, dP, H, w1.value().f32() + e * H * C, C, beta_x, dX + r0 * C, C);
    });
  });
  return y;
}

Var multiply_constant(const Var& x, const Tensor& m) {
  GANNET_CHECK(m.dtype() == DType::f32 && m.shape() == x.shape(), "multiply_constant: factor ", m.describe(),
               " does not match ", x.value().describe());
  const int64_t n = m.numel();
  const bool rg = grad_enabled() && x.requires_grad();
  Var y(Tensor::empty(x.shape()), rg);
  const float *a = x.value().f32(), *f = m.f32();
  float* o = y.value().f32();
  for (int64_t i = 0; i < n; ++i) o[i] = a[i] * f[i];
  if (!rg) return y;
  tape().record([x, y, m, n]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    Tensor dX = Tensor::empty(x.shape());
    for (int64_t i = 0; i < n; ++i) dX.f32()[i] = dY.f32()[i] * m.f32()[i];
    deposit_grad(x, dX);
  });
  return y;
}

Var softmax_mix2(const Var& a, const Var& b, const Var& logits) {
  check_2d(a.value(), "softmax_mix2", "first input");
  const int64_t N = a.value().dim(0), C = a.value().dim(1);
  GANNET_CHECK(b.shape() == a.shape(), "softmax_mix2: inputs ", a.value().describe(), " and ", b.value().describe(),
               " differ");
  check_shape(logits.value(), {N, 2}, "softmax_mix2 logits");
  const bool rg = grad_enabled() && (a.requires_grad() || b.requires_grad() || logits.requires_grad());
  Tensor P = Tensor::empty({N, 2});
  k::softmax_forward(logits.value().f32(), P.f32(), N, 2);
  Var y(Tensor::empty({N, C}), rg);
  for (int64_t n = 0; n < N; ++n) {
    const float p0 = P.f32()[2 * n], p1 = P.f32()[2 * n + 1];
    const float *x0 = a.value().f32() + n * C, *x1 = b.value().f32() + n * C;
    float* o = y.value().f32() + n * C;
    for (int64_t c = 0; c < C; ++c) o[c] = p0 * x0[c] + p1 * x1[c];
  }
  if (!rg) return y;
  tape().record([a, b, logits, y, P, N, C]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    const float* dy = dY.f32();
    const float* p = P.f32();
    for (int which = 0; which < 2; ++which) {
      const Var& v = which == 0 ? a : b;
      if (!v.requires_grad()) continue;
      Tensor d = Tensor::empty({N, C});
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c) d.f32()[n * C + c] = dy[n * C + c] * p[2 * n + which];
      deposit_grad(v, d);
    }
    if (logits.requires_grad()) {
      Tensor dP = Tensor::empty({N, 2}), dL = Tensor::empty({N, 2});
      for (int64_t n = 0; n < N; ++n) {
        double d0 = 0, d1 = 0;
        for (int64_t c = 0; c < C; ++c) {
          d0 += (double)dy[n * C + c] * a.value().f32()[n * C + c];
          d1 += (double)dy[n * C + c] * b.value().f32()[n * C + c];
        }
        dP.f32()[2 * n] = (float)d0;
        dP.f32()[2 * n + 1] = (float)d1;
      }
      k::softmax_backward(p, dP.f32(), dL.f32(), N, 2);
      deposit_grad(logits, dL);
    }
  });
  return y;
}

}  // namespace gannet::autograd
