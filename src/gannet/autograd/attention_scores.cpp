#include "gannet/autograd/attention_scores.h"

#include <cmath>
#include <vector>

#include "gannet/autograd/tape.h"
#include "gannet/core/error.h"
#include "gannet/kernels/gemm.h"

namespace gannet::autograd {
namespace k = gannet::kernels;

namespace {
// Where one (batch, head) pair's q and k start in qkv, with the row stride.
struct HeadView {
  int64_t q_offset, k_offset, ld;
};

HeadView head_view(int64_t b, int64_t h, int64_t T, int64_t C, int64_t D) {
  const int64_t q = b * T * 3 * C + h * D;
  return {q, q + C, 3 * C};
}

// Zeroes the columns j of a [T, T] block whose key is padding.
void zero_padding_keys(float* block, int64_t T, const uint8_t* mask_row) {
  if (!mask_row) return;
  for (int64_t j = 0; j < T; ++j)
    if (!mask_row[j])
      for (int64_t i = 0; i < T; ++i) block[i * T + j] = 0.f;
}

void scores_forward(const float* qkv, float* S, int64_t B, int64_t T, int64_t C, int64_t H, const uint8_t* mask) {
  const int64_t D = C / H;
  const float alpha = (float)(1.0 / std::sqrt((double)D));
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const int64_t b = bh / H;
    const HeadView v = head_view(b, bh % H, T, C, D);
    float* s = S + bh * T * T;
    k::gemm(false, true, T, T, D, alpha, qkv + v.q_offset, v.ld, qkv + v.k_offset, v.ld, 0.f, s, T);
    zero_padding_keys(s, T, mask ? mask + b * T : nullptr);
  }
}

// dq += alpha dS k and dk += alpha dS^T q per (batch, head), with dS's padding-key columns zeroed
// (those scores are constants).
void scores_backward(const float* qkv, const float* dS, float* dqkv, int64_t B, int64_t T, int64_t C, int64_t H,
                     const uint8_t* mask) {
  const int64_t D = C / H;
  const float alpha = (float)(1.0 / std::sqrt((double)D));
#pragma omp parallel
  {
    std::vector<float> ds(T * T);
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < B * H; ++bh) {
      const int64_t b = bh / H;
      const HeadView v = head_view(b, bh % H, T, C, D);
      std::copy(dS + bh * T * T, dS + (bh + 1) * T * T, ds.begin());
      zero_padding_keys(ds.data(), T, mask ? mask + b * T : nullptr);
      k::gemm(false, false, T, D, T, alpha, ds.data(), T, qkv + v.k_offset, v.ld, 1.f, dqkv + v.q_offset, v.ld);
      k::gemm(true, false, T, D, T, alpha, ds.data(), T, qkv + v.q_offset, v.ld, 1.f, dqkv + v.k_offset, v.ld);
    }
  }
}
}  // namespace

int64_t check_attention_args(const Tensor& qkv, int64_t B, int64_t T, int64_t n_head, const Tensor& key_mask,
                             const char* op) {
  GANNET_CHECK(qkv.dtype() == DType::f32 && qkv.ndim() == 2, op, ": qkv must be a 2-D f32 tensor, got ",
               qkv.describe());
  GANNET_CHECK(B >= 0 && T >= 0 && qkv.dim(0) == B * T && qkv.dim(1) % 3 == 0, op, ": qkv ", qkv.describe(),
               " does not fit B=", B, " T=", T);
  const int64_t C = qkv.dim(1) / 3;
  GANNET_CHECK(n_head > 0 && C % n_head == 0, op, ": ", C, " channels do not split into ", n_head, " heads");
  if (key_mask.defined())
    GANNET_CHECK(key_mask.dtype() == DType::u8 && key_mask.shape() == Shape({B, T}), op, ": key mask must be u8[",
                 B, ", ", T, "], got ", key_mask.describe());
  return C;
}

Var attention_scores(const Var& qkv, int64_t B, int64_t T, int64_t n_head, const Tensor& key_mask) {
  const int64_t C = check_attention_args(qkv.value(), B, T, n_head, key_mask, "attention_scores");
  const uint8_t* mask = key_mask.defined() ? key_mask.data<uint8_t>() : nullptr;
  const bool rg = grad_enabled() && qkv.requires_grad();
  Var scores(Tensor::empty({B * n_head * T, T}), rg);
  scores_forward(qkv.value().f32(), scores.value().f32(), B, T, C, n_head, mask);
  if (!rg) return scores;
  tape().record([qkv, scores, B, T, C, n_head, key_mask]() {
    const Tensor& dS = scores.grad();
    if (!dS.defined()) return;
    const uint8_t* m = key_mask.defined() ? key_mask.data<uint8_t>() : nullptr;
    scores_backward(qkv.value().f32(), dS.f32(), sum_target(qkv).f32(), B, T, C, n_head, m);
  });
  return scores;
}

}  // namespace gannet::autograd
