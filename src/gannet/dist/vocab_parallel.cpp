#include "gannet/dist/vocab_parallel.h"

#include <cmath>
#include <cstring>

#include "gannet/autograd/tape.h"
#include "gannet/core/error.h"
#include "gannet/kernels/cross_entropy.h"
#include "gannet/kernels/embedding.h"

namespace gannet::dist {

namespace k = gannet::kernels;
using autograd::Var;

namespace {
void check_2d(const Tensor& t, const char* op, const char* what) {
  GANNET_CHECK(t.dtype() == DType::f32 && t.ndim() == 2, op, ": ", what, " must be a 2-D f32 tensor, got ",
               t.describe());
}
}  // namespace

Var vocab_parallel_embedding(Communicator& group, const Tensor& tokens, const Var& wte_local, const Var& wpe) {
  const char* op = "vocab-parallel embedding";
  GANNET_CHECK(tokens.dtype() == DType::i32 && tokens.ndim() == 2, op, ": tokens must be i32[B, T], got ",
               tokens.describe());
  check_2d(wte_local.value(), op, "token table slice");
  const int64_t B = tokens.dim(0), T = tokens.dim(1), rows = wte_local.value().dim(0), C = wte_local.value().dim(1);
  const int64_t first = rows * group.rank();
  if (wpe.defined()) {
    check_2d(wpe.value(), op, "position table");
    GANNET_CHECK(wpe.value().dim(1) == C && wpe.value().dim(0) >= T, op, ": sequence of ", T,
                 " tokens does not fit position table ", wpe.value().describe());
  }
  k::detail::check_embedding_tokens(tokens.data<int32_t>(), B, T, C, rows * group.size());
  const bool rg = autograd::grad_enabled() && (wte_local.requires_grad() || wpe.requires_grad());
  Var y(Tensor::empty({B * T, C}), rg);
  k::embedding_slice_forward(tokens.data<int32_t>(), wte_local.value().f32(),
                             wpe.defined() ? wpe.value().f32() : nullptr, y.value().f32(), B, T, C, first, rows);
  // Exactly one rank holds each token's row (plus its position's): the sum adds zeros to it.
  group.all_reduce_sum(y.value().f32(), y.value().numel());
  if (!rg) return y;
  autograd::tape().record([tokens, wte_local, wpe, y, B, T, C, first, rows]() {
    const Tensor& dY = y.grad();
    if (!dY.defined()) return;
    const bool te = wte_local.requires_grad(), pe = wpe.defined() && wpe.requires_grad();
    k::embedding_slice_backward(tokens.data<int32_t>(), dY.f32(), te ? autograd::sum_target(wte_local).f32() : nullptr,
                                pe ? autograd::sum_target(wpe).f32() : nullptr, B, T, C, first, te ? rows : 0);
  });
  return y;
}

Var vocab_parallel_cross_entropy(Communicator& group, const Var& local_logits, const Tensor& targets) {
  const Tensor& L = local_logits.value();
  check_2d(L, "vocab-parallel cross_entropy", "logits");
  const int64_t N = L.dim(0), V = L.dim(1), first = V * group.rank();
  GANNET_CHECK(targets.dtype() == DType::i32 && targets.numel() == N, "vocab-parallel cross_entropy: targets ",
               targets.describe(), " do not match logits ", L.describe());
  const int32_t* tg = targets.data<int32_t>();
  k::detail::check_cross_entropy_targets(tg, N, V * group.size());
  const bool rg = autograd::grad_enabled() && local_logits.requires_grad();
  Tensor mx = Tensor::empty({N});
  Tensor sums = Tensor::empty({2 * N});  // [0, N): sums of exponentials; [N, 2N): target logits
  k::cross_entropy_row_max(L.f32(), mx.f32(), N, V);
  group.all_reduce_max(mx.f32(), N);
  k::cross_entropy_slice_sums(L.f32(), rg ? L.f32() : nullptr, tg, first, mx.f32(), sums.f32(), sums.f32() + N, N, V);
  group.all_reduce_sum(sums.f32(), 2 * N);
  double total = 0;
  int64_t counted = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (tg[i] == k::kIgnoreIndex) continue;
    // log(sum) + max - target, as the whole-vocabulary kernel: the difference in float, the log in double
    total += std::log((double)sums.f32()[i]) - ((double)sums.f32()[N + i] - (double)mx.f32()[i]);
    ++counted;
  }
  Var loss(Tensor::empty({1}), rg);
  loss.value().f32()[0] = counted ? (float)(total / (double)counted) : 0.f;
  if (!rg) return loss;
  k::cross_entropy_slice_backward(L.f32(), tg, first, sums.f32(), N, V, counted ? 1.f / (float)counted : 0.f);
  autograd::record_grad_in_value(local_logits, loss);
  return loss;
}

Var gather_vocab(Communicator& group, const Var& local_logits) {
  const Tensor& L = local_logits.value();
  check_2d(L, "gather_vocab", "logits");
  const int t = group.size(), r = group.rank();
  const int64_t N = L.dim(0), V = L.dim(1);
  Tensor all = Tensor::empty({t * N * V});  // rank q's [N, V] block after rank q - 1's
  group.all_gather(L.f32(), all.f32(), N * V);
  const bool rg = autograd::grad_enabled() && local_logits.requires_grad();
  Var y(Tensor::empty({N, t * V}), rg);
  float* out = y.value().f32();
  for (int q = 0; q < t; ++q)
    for (int64_t i = 0; i < N; ++i)
      std::memcpy(out + i * t * V + q * V, all.f32() + (q * N + i) * V, (size_t)V * 4);
  if (rg)
    autograd::tape().record([local_logits, y, N, V, t, r]() {
      if (!y.grad().defined()) return;
      Tensor g = Tensor::empty({N, V});
      for (int64_t i = 0; i < N; ++i)
        std::memcpy(g.f32() + i * V, y.grad().f32() + i * t * V + r * V, (size_t)V * 4);
      autograd::deposit_grad(local_logits, g);
    });
  return y;
}

}  // namespace gannet::dist
