#include "gannet/dist/tensor_parallel.h"

#include <cstring>

#include "gannet/autograd/checkpoint.h"
#include "gannet/autograd/tape.h"
#include "gannet/core/error.h"
#include "gannet/dist/vocab_parallel.h"

namespace gannet::dist {

namespace {
using autograd::Var;


// Copies between a whole tensor and rank r's slice of it (to_local: whole -> local).
void copy_slice(int64_t parts, int64_t rows, int64_t width, nn::LinearSplit split, int r, int t, float* whole,
                float* local, bool to_local) {
  if (split == nn::LinearSplit::column) {
    const int64_t lr = rows / t;
    for (int64_t p = 0; p < parts; ++p) {
      float* w = whole + (p * rows + r * lr) * width;
      float* l = local + p * lr * width;
      if (to_local) std::memcpy(l, w, (size_t)(lr * width) * 4);
      else std::memcpy(w, l, (size_t)(lr * width) * 4);
    }
  } else {
    const int64_t lw = width / t;
    for (int64_t i = 0; i < rows; ++i) {
      float* w = whole + i * width + r * lw;
      float* l = local + i * lw;
      if (to_local) std::memcpy(l, w, (size_t)lw * 4);
      else std::memcpy(w, l, (size_t)lw * 4);
    }
  }
}
// A forward collective's result: the one kept by the first run of an activation-checkpointed
// region when this is its recomputation, else `run()` (kept for a recomputation to come).
template <class Run>
Tensor kept_or(const Var& x, Run run) {
  if (const std::any* k = autograd::kept_communication()) {
    const Tensor& kept = std::any_cast<const Tensor&>(*k);
    GANNET_CHECK(kept.dim(1) == x.value().dim(1), "tensor parallelism: the recomputation's collective is on ",
                 x.value().describe(), ", the first run's gave ", kept.describe());
    return kept;
  }
  Tensor out = run();
  autograd::keep_communication(out);
  return out;
}
}  // namespace

TensorParallel::TensorParallel(models::Gpt& model, Communicator& group, const TensorParallelOptions& options)
    : group_(group) {
  const int t = group.size();
  const models::GptConfig& c = model.config();
  GANNET_CHECK(c.n_head % t == 0, "tensor parallelism: n_head ", c.n_head, " is not a multiple of parallel.tensor ", t);
  GANNET_CHECK(!options.vocab_parallel || c.vocab_size % t == 0, "tensor parallelism: vocab_size ", c.vocab_size,
               " is not a multiple of parallel.tensor ", t, " (set parallel.vocab_parallel to false to keep the token "
               "embedding whole)");
  const nn::ParameterList& params = model.parameters();
  specs_.assign(params.size(), Spec{});
  auto index_of = [&](const Var& v) {
    for (size_t i = 0; i < params.size(); ++i)
      if (params[i].var.same(v)) return i;
    fail("tensor parallelism: a block product is not among the model's parameters");
  };
  for (nn::Block* b : model.blocks()) {
    auto split = [&](nn::Linear& l, nn::LinearSplit how, int64_t parts) {
      l.split = how;
      l.tp = this;
      const int64_t out = l.weight.shape()[0], in = l.weight.shape()[1];
      if (how == nn::LinearSplit::column) {
        Spec w{how, parts, out / parts, in};
        specs_[index_of(l.weight)] = w;
        cut(l.weight, w);
        if (l.bias.defined()) {
          Spec bs{how, parts, out / parts, 1};
          specs_[index_of(l.bias)] = bs;
          cut(l.bias, bs);
        }
      } else {
        Spec w{how, 1, out, in};
        specs_[index_of(l.weight)] = w;
        cut(l.weight, w);  // the bias stays whole: added once, after the all-reduce
      }
    };
    split(b->attn.c_attn, nn::LinearSplit::column, 3);  // Q, K and V: each rank its heads of each
    split(b->attn.c_proj, nn::LinearSplit::row, 1);
    b->attn.n_head = c.n_head / t;
    if (options.duplicate_token_dropping && b->moe) {
      b->moe_token_split = this;
      b->moe->aux_scale = 1.0 / t;
    }
    if (b->has_mlp()) {
      split(b->mlp.c_fc, nn::LinearSplit::column, 1);
      split(b->mlp.c_proj, nn::LinearSplit::row, 1);
    }
  }
  if (options.vocab_parallel) {  // rows of the table, as a column-parallel Linear's output rows
    Var wte = model.token_embedding();
    Spec s{nn::LinearSplit::column, 1, c.vocab_size, c.n_embd};
    specs_[index_of(wte)] = s;
    cut(wte, s);
    model.set_vocab_parallel(this);
  }
}

void TensorParallel::cut(Var& v, const Spec& s) {
  const int t = group_.size();
  const Tensor whole = v.value();
  Shape shape = whole.shape();
  if (s.split == nn::LinearSplit::column) shape[0] /= t;
  else shape[1] /= t;
  GANNET_CHECK((s.split == nn::LinearSplit::column ? s.rows : s.width) % t == 0, "tensor parallelism: ",
               whole.describe(), " cannot be split ", t, " ways");
  Tensor mine = Tensor::empty(shape);
  copy_slice(s.parts, s.rows, s.width, s.split, group_.rank(), t, whole.f32(), mine.f32(), true);
  v.value() = mine;
}

std::vector<bool> TensorParallel::sliced() const {
  std::vector<bool> out;
  for (size_t i = 0; i < specs_.size(); ++i) out.push_back(owns(i));
  return out;
}

void TensorParallel::gather(size_t i, const Tensor& local, Tensor& whole) const {
  const Spec& s = specs_[i];
  const int t = group_.size();
  GANNET_CHECK(whole.numel() == local.numel() * t, "tensor parallelism: tensor ", i, " is ", whole.describe(),
               ", this rank holds ", local.describe());
  Tensor all = Tensor::empty({local.numel() * t});
  group_.all_gather(local.f32(), all.f32(), local.numel());
  for (int r = 0; r < t; ++r)
    copy_slice(s.parts, s.rows, s.width, s.split, r, t, whole.f32(), all.f32() + r * local.numel(), false);
}

void TensorParallel::slice(size_t i, const Tensor& whole, Tensor& local) const {
  const Spec& s = specs_[i];
  GANNET_CHECK(whole.numel() == local.numel() * group_.size(), "tensor parallelism: tensor ", i, " is ",
               whole.describe(), ", this rank holds ", local.describe());
  copy_slice(s.parts, s.rows, s.width, s.split, group_.rank(), group_.size(), whole.f32(), local.f32(), true);
}

std::vector<Box> TensorParallel::boxes(size_t i, const Shape& whole) const {
  const Spec& s = specs_[i];
  const int t = group_.size(), r = group_.rank();
  Box all;
  for (int64_t n : whole) all.emplace_back(0, n);
  std::vector<Box> out;
  if (s.split == nn::LinearSplit::column) {
    GANNET_CHECK(!whole.empty() && whole[0] == s.parts * s.rows, "tensor parallelism: tensor ", i, " is not ",
                 s.parts, " blocks of ", s.rows, " rows");
    const int64_t lr = s.rows / t;
    for (int64_t p = 0; p < s.parts; ++p) {
      Box b = all;
      b[0] = {p * s.rows + r * lr, p * s.rows + (r + 1) * lr};
      out.push_back(b);
    }
  } else {
    GANNET_CHECK(whole.size() == 2 && whole[0] == s.rows && whole[1] == s.width, "tensor parallelism: tensor ", i,
                 " is not ", s.rows, " x ", s.width);
    const int64_t lw = s.width / t;
    Box b = all;
    b[1] = {r * lw, (r + 1) * lw};
    out.push_back(b);
  }
  return out;
}

Var TensorParallel::copy_to_parallel(const Var& x) const {
  const bool rg = autograd::grad_enabled() && x.requires_grad();
  Var y(x.value(), rg);  // the same values; a node of its own, so that its gradient is summed first
  if (rg) {
    Communicator* g = &group_;
    autograd::tape().record([g, x, y] {
      Tensor d = y.grad().defined() ? y.grad().clone() : Tensor::zeros(y.shape());  // every rank takes part
      g->all_reduce_sum(d.f32(), d.numel());
      autograd::deposit_grad(x, d);
    });
  }
  return y;
}

Var TensorParallel::scatter_rows(const Var& x) const {
  const int t = group_.size();
  const int64_t N = x.value().dim(0), C = x.value().dim(1);
  GANNET_CHECK(N % t == 0, "duplicate-token dropping: ", N, " token rows cannot be split over ", t,
               " tensor-parallel ranks");
  const int64_t n = N / t;
  const bool rg = autograd::grad_enabled() && x.requires_grad();
  Var y(x.value().slice(group_.rank() * n, (group_.rank() + 1) * n).clone(), rg);
  if (rg) {
    Communicator* g = &group_;
    autograd::tape().record([g, x, y, n, C] {
      Tensor mine = y.grad().defined() ? y.grad() : Tensor::zeros(y.shape());
      Tensor all = Tensor::empty(x.shape());
      g->all_gather(mine.f32(), all.f32(), n * C);
      autograd::deposit_grad(x, all);
    });
  }
  return y;
}

Var TensorParallel::gather_rows(const Var& x) const {
  const int t = group_.size();
  const int64_t n = x.value().dim(0), C = x.value().dim(1);
  const bool rg = autograd::grad_enabled() && x.requires_grad();
  Var y(kept_or(x, [&] {
          Tensor all = Tensor::empty({n * t, C});
          group_.all_gather(x.value().f32(), all.f32(), n * C);
          return all;
        }),
        rg);
  if (rg) {
    const int r = group_.rank();
    autograd::tape().record([x, y, n, r] {
      if (y.grad().defined()) autograd::deposit_grad(x, y.grad().slice(r * n, (r + 1) * n).clone());
    });
  }
  return y;
}

Var TensorParallel::reduce_from_parallel(const Var& x) const {
  const bool rg = autograd::grad_enabled() && x.requires_grad();
  Var y(kept_or(x, [&] {
          Tensor sum = x.value().clone();
          group_.all_reduce_sum(sum.f32(), sum.numel());
          return sum;
        }),
        rg);
  if (rg)
    autograd::tape().record([x, y] {
      if (y.grad().defined()) autograd::deposit_grad(x, y.grad());
    });
  return y;
}

Var TensorParallel::embed_tokens(const Tensor& tokens, const Var& wte_local, const Var& wpe) const {
  return vocab_parallel_embedding(group_, tokens, wte_local, wpe);
}

Var TensorParallel::vocab_cross_entropy(const Var& local_logits, const Tensor& targets) const {
  return vocab_parallel_cross_entropy(group_, local_logits, targets);
}

Var TensorParallel::gather_vocab(const Var& local_logits) const { return dist::gather_vocab(group_, local_logits); }

}  // namespace gannet::dist
