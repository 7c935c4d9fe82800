#include "gannet/autograd/ops.h"

#include <cmath>

#include "gannet/autograd/attention_scores.h"
#include "gannet/autograd/tape.h"
#include "gannet/kernels/attention.h"
#include "gannet/kernels/bias.h"
#include "gannet/kernels/cross_entropy.h"
#include "gannet/kernels/embedding.h"
#include "gannet/kernels/gelu.h"
#include "gannet/kernels/gemm.h"
#include "gannet/kernels/layernorm.h"

namespace gannet::autograd {
namespace k = gannet::kernels;

namespace {
bool needs_grad(std::initializer_list<const Var*> vars) {
  if (!grad_enabled()) return false;
  for (const Var* v : vars)
    if (v->defined() && v->requires_grad()) return true;
  return false;
}

Var make_output(const Shape& shape, bool requires_grad) {
  return Var(Tensor::empty(shape), requires_grad);
}

// Where an op whose backward kernel overwrites its output puts v's gradient: straight into v's
// gradient buffer when v has none yet, otherwise into scratch that add_overwritten_grad adds on.
struct OverwriteTarget {
  Tensor buffer;
  bool scratch;
};

OverwriteTarget overwrite_target(const Var& v) {
  OverwriteTarget t{Tensor::empty(v.shape()), !v.requires_grad() || v.grad().defined()};
  if (!t.scratch) v.grad() = t.buffer;
  return t;
}

void add_overwritten_grad(const Var& v, const OverwriteTarget& t) {
  if (t.scratch && v.requires_grad()) k::add_inplace(v.grad().f32(), t.buffer.f32(), t.buffer.numel());
}

void check_f32_2d(const Tensor& t, const char* op, const char* what) {
  GANNET_CHECK(t.dtype() == DType::f32 && t.ndim() == 2, op, ": ", what, " must be a 2-D f32 tensor, got ",
               t.describe());
}
}  // namespace

Var linear(const Var& x, const Var& w, const Var& b) {
  const Tensor& X = x.value();
  const Tensor& W = w.value();
  check_f32_2d(X, "linear", "input");
  check_f32_2d(W, "linear", "weight");
  const int64_t N = X.dim(0), in = X.dim(1), out = W.dim(0);
  GANNET_CHECK(W.dim(1) == in, "linear: input ", X.describe(), " does not match weight ", W.describe());
  if (b.defined()) check_shape(b.value(), {out}, "linear bias");
  bool rg = needs_grad({&x, &w, &b});
  Var y = make_output({N, out}, rg);
  float* Y = y.value().f32();
  k::gemm(false, true, N, out, in, 1.f, X.f32(), in, W.f32(), in, 0.f, Y, out);
  if (b.defined()) k::add_bias(Y, b.value().f32(), N, out);
  if (!rg) return y;
  tape().record([x, w, b, y, N, in, out]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    if (x.requires_grad()) {
      bool acc;
      Tensor& dX = grad_for(x, acc);
      k::gemm(false, false, N, in, out, 1.f, dY.f32(), out, w.value().f32(), in, acc ? 1.f : 0.f, dX.f32(), in);
    }
    if (w.requires_grad()) {
      bool acc;
      Tensor& dW = grad_for(w, acc);
      k::gemm(true, false, out, in, N, 1.f, dY.f32(), out, x.value().f32(), in, acc ? 1.f : 0.f, dW.f32(), in);
    }
    if (b.defined() && b.requires_grad()) {
      Tensor& dB = sum_target(b);
      k::bias_grad(dY.f32(), dB.f32(), N, out);
    }
  });
  return y;
}

Var layernorm(const Var& x, const Var& gamma, const Var& beta, float eps) {
  const Tensor& X = x.value();
  check_f32_2d(X, "layernorm", "input");
  const int64_t N = X.dim(0), C = X.dim(1);
  check_shape(gamma.value(), {C}, "layernorm weight");
  check_shape(beta.value(), {C}, "layernorm bias");
  bool rg = needs_grad({&x, &gamma, &beta});
  Var y = make_output({N, C}, rg);
  Tensor mean, rstd;
  if (rg) {
    mean = Tensor::empty({N});
    rstd = Tensor::empty({N});
  }
  k::layernorm_forward(X.f32(), gamma.value().f32(), beta.value().f32(), y.value().f32(),
                       rg ? mean.f32() : nullptr, rg ? rstd.f32() : nullptr, N, C, eps);
  if (!rg) return y;
  tape().record([x, gamma, beta, y, mean, rstd, N, C]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    Tensor& dG = sum_target(gamma);
    Tensor& dB = sum_target(beta);
    OverwriteTarget dX = overwrite_target(x);
    k::layernorm_backward(x.value().f32(), gamma.value().f32(), mean.f32(), rstd.f32(), dY.f32(), dX.buffer.f32(),
                          dG.f32(), dB.f32(), N, C);
    add_overwritten_grad(x, dX);
  });
  return y;
}

Var gelu(const Var& x) {
  const Tensor& X = x.value();
  bool rg = needs_grad({&x});
  Var y = make_output(X.shape(), rg);
  k::gelu_forward(X.f32(), y.value().f32(), X.numel());
  if (!rg) return y;
  tape().record([x, y]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    int64_t n = dY.numel();
    if (!x.grad().defined()) {
      // dY is not needed after this: compute the input gradient in its buffer.
      k::gelu_backward(x.value().f32(), dY.f32(), dY.f32(), n);
      x.grad() = dY.view(x.shape());
    } else {
      Tensor tmp = Tensor::empty(x.shape());
      k::gelu_backward(x.value().f32(), dY.f32(), tmp.f32(), n);
      k::add_inplace(x.grad().f32(), tmp.f32(), n);
    }
  });
  return y;
}

Var add_bias(const Var& x, const Var& b) {
  check_f32_2d(x.value(), "add_bias", "input");
  const int64_t N = x.value().dim(0), C = x.value().dim(1);
  check_shape(b.value(), {C}, "add_bias bias");
  bool rg = needs_grad({&x, &b});
  Var y = make_output({N, C}, rg);
  y.value().copy_from(x.value());
  k::add_bias(y.value().f32(), b.value().f32(), N, C);
  if (!rg) return y;
  tape().record([x, b, y, N, C]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    if (b.requires_grad()) k::bias_grad(dY.f32(), sum_target(b).f32(), N, C);
    if (x.requires_grad()) deposit_grad(x, dY);
  });
  return y;
}

Var add(const Var& a, const Var& b) {
  GANNET_CHECK(a.shape() == b.shape(), "add: shapes differ: ", a.value().describe(), " and ", b.value().describe());
  bool rg = needs_grad({&a, &b});
  Var y = make_output(a.shape(), rg);
  k::add(a.value().f32(), b.value().f32(), y.value().f32(), y.value().numel());
  if (!rg) return y;
  tape().record([a, b, y]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    // y's gradient is complete and read by nobody else: the first input may take the buffer
    // itself; the second gets a copy, since the first's may still change.
    bool first = true;
    for (const Var* v : {&a, &b}) {
      if (!v->requires_grad()) continue;
      if (!v->grad().defined()) {
        v->grad() = first ? dY : dY.clone();
        first = false;
      } else {
        k::add_inplace(v->grad().f32(), dY.f32(), dY.numel());
      }
    }
  });
  return y;
}

Var scale(const Var& x, float c) {
  const Tensor& X = x.value();
  GANNET_CHECK(X.dtype() == DType::f32, "scale: needs an f32 tensor, got ", X.describe());
  bool rg = needs_grad({&x});
  Var y = make_output(X.shape(), rg);
  y.value().copy_from(X);
  k::scale_inplace(y.value().f32(), c, y.value().numel());
  if (!rg) return y;
  tape().record([x, y, c]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    Tensor fresh = dY.clone();
    k::scale_inplace(fresh.f32(), c, fresh.numel());
    deposit_grad(x, fresh);
  });
  return y;
}

Var attention(const Var& qkv, int64_t B, int64_t T, int64_t n_head, bool causal, const Tensor& key_mask) {
  const Tensor& QKV = qkv.value();
  const int64_t C = check_attention_args(QKV, B, T, n_head, key_mask, "attention");
  const uint8_t* mask = key_mask.defined() ? key_mask.data<uint8_t>() : nullptr;
  bool rg = needs_grad({&qkv});
  Var y = make_output({B * T, C}, rg);
  Tensor lse = Tensor::empty({B, n_head, T});
  k::attention_forward(QKV.f32(), y.value().f32(), lse.f32(), B, T, C, n_head, causal, mask);
  if (!rg) return y;
  tape().record([qkv, y, lse, B, T, C, n_head, causal, key_mask]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    const uint8_t* m = key_mask.defined() ? key_mask.data<uint8_t>() : nullptr;
    OverwriteTarget d = overwrite_target(qkv);
    k::attention_backward(qkv.value().f32(), y.value().f32(), dY.f32(), lse.f32(), d.buffer.f32(), B, T, C, n_head,
                          causal, m);
    add_overwritten_grad(qkv, d);
  });
  return y;
}

Var embedding(const Tensor& tokens, const Var& wte, const Var& wpe) {
  GANNET_CHECK(tokens.dtype() == DType::i32 && tokens.ndim() == 2, "embedding: tokens must be i32[B, T], got ",
               tokens.describe());
  const int64_t B = tokens.dim(0), T = tokens.dim(1);
  check_f32_2d(wte.value(), "embedding", "token table");
  const int64_t V = wte.value().dim(0), C = wte.value().dim(1);
  if (wpe.defined()) {
    check_f32_2d(wpe.value(), "embedding", "position table");
    GANNET_CHECK(wpe.value().dim(1) == C && wpe.value().dim(0) >= T, "embedding: sequence of ", T,
                 " tokens does not fit position table ", wpe.value().describe());
  }
  bool rg = needs_grad({&wte, &wpe});
  Var y = make_output({B * T, C}, rg);
  k::embedding_forward(tokens.data<int32_t>(), wte.value().f32(), wpe.defined() ? wpe.value().f32() : nullptr,
                       y.value().f32(), B, T, C, V);
  if (!rg) return y;
  tape().record([tokens, wte, wpe, y, B, T, C]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    Tensor& dE = sum_target(wte);
    float* dP = nullptr;
    if (wpe.defined() && wpe.requires_grad()) {
      dP = sum_target(wpe).f32();
    }
    k::embedding_backward(tokens.data<int32_t>(), dY.f32(), dE.f32(), dP, B, T, C);
  });
  return y;
}

Var cross_entropy(const Var& logits, const Tensor& targets) {
  const Tensor& L = logits.value();
  check_f32_2d(L, "cross_entropy", "logits");
  const int64_t N = L.dim(0), V = L.dim(1);
  GANNET_CHECK(targets.dtype() == DType::i32 && targets.numel() == N, "cross_entropy: targets ",
               targets.describe(), " do not match logits ", L.describe());
  bool rg = needs_grad({&logits});
  Var loss = make_output({1}, rg);
  if (!rg) {
    loss.value().f32()[0] = k::cross_entropy_forward(L.f32(), targets.data<int32_t>(), nullptr, N, V);
    return loss;
  }
  int64_t counted = 0;
  const int32_t* tg = targets.data<int32_t>();
  for (int64_t i = 0; i < N; ++i) counted += tg[i] != -1;
  float scale = counted ? 1.f / (float)counted : 0.f;
  loss.value().f32()[0] = k::cross_entropy_forward_backward(L.f32(), tg, nullptr, N, V, scale);
  record_grad_in_value(logits, loss);  // the logits' buffer holds d(mean loss)/d(logits)
  return loss;
}

Var masked_mean_pool(const Var& x, int64_t B, int64_t T, const Tensor& mask) {
  const Tensor& X = x.value();
  check_f32_2d(X, "masked_mean_pool", "input");
  GANNET_CHECK(X.dim(0) == B * T, "masked_mean_pool: input ", X.describe(), " does not fit B=", B, " T=", T);
  GANNET_CHECK(mask.dtype() == DType::u8 && mask.shape() == Shape({B, T}), "masked_mean_pool: mask must be u8[",
               B, ", ", T, "], got ", mask.describe());
  const int64_t C = X.dim(1);
  bool rg = needs_grad({&x});
  Var y = make_output({B, C}, rg);
  Tensor counts = Tensor::empty({B});
  const uint8_t* m = mask.data<uint8_t>();
  for (int64_t b = 0; b < B; ++b) {
    float* out = y.value().f32() + b * C;
    for (int64_t c = 0; c < C; ++c) out[c] = 0.f;
    int64_t n = 0;
    for (int64_t t = 0; t < T; ++t) {
      if (!m[b * T + t]) continue;
      k::add_inplace(out, X.f32() + (b * T + t) * C, C);
      ++n;
    }
    counts.f32()[b] = (float)n;
    if (n) k::scale_inplace(out, 1.f / (float)n, C);
  }
  if (!rg) return y;
  tape().record([x, y, mask, counts, B, T, C]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    Tensor& dX = sum_target(x);
    const uint8_t* mm = mask.data<uint8_t>();
    for (int64_t b = 0; b < B; ++b) {
      float n = counts.f32()[b];
      if (n == 0.f) continue;
      for (int64_t t = 0; t < T; ++t) {
        if (!mm[b * T + t]) continue;
        float* dst = dX.f32() + (b * T + t) * C;
        const float* src = dY.f32() + b * C;
        for (int64_t c = 0; c < C; ++c) dst[c] += src[c] / n;
      }
    }
  });
  return y;
}

}  // namespace gannet::autograd
