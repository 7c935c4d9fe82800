#include "gannet/dist/expert_all_to_all.h"

#include <cstring>

#include "gannet/autograd/checkpoint.h"
#include "gannet/autograd/tape.h"
#include "gannet/core/error.h"

namespace gannet::dist {

namespace {

using autograd::Var;
using Plan = ExpertAllToAll::Plan;

std::vector<int64_t> floats(const std::vector<int64_t>& rows, int64_t width) {
  std::vector<int64_t> out(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) out[i] = rows[i] * width;
  return out;
}

// Rows in the sender's layout (grouped by destination rank, then by its local expert) to the
// experts' layout (grouped by local expert, then by source rank).
Tensor to_experts(Communicator& g, const Plan& p, const Tensor& rows) {
  const int N = g.size();
  const int64_t W = p.width, L = (int64_t)p.counts[0].size();
  Tensor recv = Tensor::empty({p.received, W});
  Tensor staged = Tensor::empty({p.received, W});
  g.all_to_all(rows.f32(), floats(p.send_rows, W), staged.f32(), floats(p.recv_rows, W));
  std::vector<int64_t> src_at((size_t)N);  // start of source s's rows in `staged`
  for (int s = 1; s < N; ++s) src_at[(size_t)s] = src_at[(size_t)s - 1] + p.recv_rows[(size_t)s - 1];
  int64_t at = 0;
  for (int64_t j = 0; j < L; ++j)
    for (int s = 0; s < N; ++s) {
      const int64_t n = p.counts[(size_t)s][(size_t)j];
      std::memcpy(recv.f32() + at * W, staged.f32() + src_at[(size_t)s] * W, (size_t)(n * W) * 4);
      src_at[(size_t)s] += n;
      at += n;
    }
  return recv;
}

// The inverse: the experts' layout back to the senders, each rank receiving its rows in its layout.
Tensor to_senders(Communicator& g, const Plan& p, const Tensor& rows, int64_t sent) {
  const int N = g.size();
  const int64_t W = p.width, L = (int64_t)p.counts[0].size();
  Tensor staged = Tensor::empty({p.received, W});
  std::vector<int64_t> src_at((size_t)N);
  for (int s = 1; s < N; ++s) src_at[(size_t)s] = src_at[(size_t)s - 1] + p.recv_rows[(size_t)s - 1];
  int64_t at = 0;
  for (int64_t j = 0; j < L; ++j)
    for (int s = 0; s < N; ++s) {
      const int64_t n = p.counts[(size_t)s][(size_t)j];
      std::memcpy(staged.f32() + src_at[(size_t)s] * W, rows.f32() + at * W, (size_t)(n * W) * 4);
      src_at[(size_t)s] += n;
      at += n;
    }
  Tensor back = Tensor::empty({sent, W});
  g.all_to_all(staged.f32(), floats(p.recv_rows, W), back.f32(), floats(p.send_rows, W));
  return back;
}

int64_t total(const std::vector<int64_t>& v) {
  int64_t t = 0;
  for (int64_t x : v) t += x;
  return t;
}

// dY if defined, else zeros of the shape: every rank must take part in the exchange.
Tensor grad_or_zeros(const Var& y) {
  if (y.grad().defined()) return y.grad();
  return Tensor::zeros(y.shape());
}

// What a dispatch keeps for an activation-checkpointing recomputation: the counts exchanged, the
// rows received and the offsets into them.
struct KeptDispatch {
  std::shared_ptr<const Plan> plan;
  Tensor received;
  std::vector<int32_t> offsets;
  int64_t sent = 0;
};


}  // namespace

ExpertAllToAll::ExpertAllToAll(Communicator& group, int64_t experts) : group_(group), experts_(experts) {
  GANNET_CHECK(experts >= 1 && experts % group.size() == 0, "expert parallelism: ", experts,
               " experts cannot be spread evenly over ", group.size(), " processes");
}

Var ExpertAllToAll::dispatch(const Var& rows, std::vector<int32_t>& offsets) const {
  GANNET_CHECK((int64_t)offsets.size() == experts_ + 1, "expert exchange: offsets for ", offsets.size() - 1,
               " experts, the layer has ", experts_);
  const int N = group_.size();
  const int64_t L = local_experts(), W = rows.value().ndim() == 2 ? rows.value().dim(1) : 0;
  GANNET_CHECK(rows.value().ndim() == 2 && rows.value().dim(0) == offsets.back(), "expert exchange: ",
               rows.value().describe(), " rows for ", offsets.back(), " slots");
  const bool rg = autograd::grad_enabled() && rows.requires_grad();
  const int64_t sent = rows.value().dim(0);
  if (const std::any* k = autograd::kept_communication()) {  // recomputation: nothing moves again
    const auto& kept = std::any_cast<const KeptDispatch&>(*k);
    GANNET_CHECK(kept.sent == sent && kept.plan->width == W, "expert exchange: the recomputation dispatches ",
                 rows.value().describe(), ", the first run ", kept.sent, " rows of ", kept.plan->width);
    offsets = kept.offsets;
    last_ = kept.plan;
    return record_dispatch(rows, kept.received, kept.plan, rg);
  }
  // Every rank's rows per expert, so each knows what it receives and from whom.
  std::vector<int64_t> mine((size_t)experts_), all((size_t)(experts_ * N));
  for (int64_t e = 0; e < experts_; ++e) mine[(size_t)e] = offsets[(size_t)e + 1] - offsets[(size_t)e];
  group_.all_gather(mine.data(), all.data(), experts_);
  auto plan = std::make_shared<Plan>();
  plan->width = W;
  plan->send_rows.assign((size_t)N, 0);
  plan->recv_rows.assign((size_t)N, 0);
  plan->counts.assign((size_t)N, std::vector<int64_t>((size_t)L));
  for (int s = 0; s < N; ++s)
    for (int64_t e = 0; e < experts_; ++e) {
      const int owner = (int)(e / L);
      if (s == group_.rank()) plan->send_rows[(size_t)owner] += all[(size_t)(s * experts_ + e)];
      if (owner == group_.rank()) {
        plan->counts[(size_t)s][(size_t)(e - owner * L)] = all[(size_t)(s * experts_ + e)];
        plan->recv_rows[(size_t)s] += all[(size_t)(s * experts_ + e)];
      }
    }
  plan->received = total(plan->recv_rows);
  offsets.assign((size_t)L + 1, 0);
  for (int64_t j = 0; j < L; ++j) {
    int64_t n = 0;
    for (int s = 0; s < N; ++s) n += plan->counts[(size_t)s][(size_t)j];
    offsets[(size_t)j + 1] = offsets[(size_t)j] + (int32_t)n;
  }
  last_ = plan;
  Tensor received = to_experts(group_, *plan, rows.value());
  autograd::keep_communication(KeptDispatch{plan, received, offsets, sent});
  return record_dispatch(rows, received, plan, rg);
}

Var ExpertAllToAll::record_dispatch(const Var& rows, const Tensor& received, std::shared_ptr<const Plan> plan,
                                    bool rg) const {
  Var out(received, rg);
  if (rg) {
    Communicator* g = &group_;
    const int64_t sent = rows.value().dim(0);
    autograd::tape().record([g, plan, rows, out, sent] { autograd::deposit_grad(rows, to_senders(*g, *plan, grad_or_zeros(out), sent)); });
  }
  return out;
}

Var ExpertAllToAll::combine(const Var& rows) const {
  GANNET_CHECK(last_ != nullptr, "expert exchange: combine without a dispatch");
  std::shared_ptr<const Plan> plan = std::move(last_);
  last_.reset();
  GANNET_CHECK(rows.value().ndim() == 2 && rows.value().dim(0) == plan->received, "expert exchange: ",
               rows.value().describe(), " expert output rows, ", plan->received, " were dispatched");
  const int64_t sent = total(plan->send_rows);
  const bool rg = autograd::grad_enabled() && rows.requires_grad();
  Tensor back;
  if (const std::any* k = autograd::kept_communication()) {
    back = std::any_cast<const Tensor&>(*k);
    GANNET_CHECK(back.dim(0) == sent, "expert exchange: the recomputation combines ", sent, " rows, the first run ",
                 back.dim(0));
  } else {
    back = to_senders(group_, *plan, rows.value(), sent);
    autograd::keep_communication(back);
  }
  Var out(back, rg);
  if (rg) {
    Communicator* g = &group_;
    autograd::tape().record([g, plan, rows, out] { autograd::deposit_grad(rows, to_experts(*g, *plan, grad_or_zeros(out))); });
  }
  return out;
}

}  // namespace gannet::dist
