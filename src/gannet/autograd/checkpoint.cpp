#include "gannet/autograd/checkpoint.h"

#include <memory>

#include "gannet/autograd/tape.h"
#include "gannet/core/error.h"

namespace gannet::autograd {

namespace {

// The communication results of one region: filled on the first run, read back in order on the
// recomputation.
struct KeptResults {
  std::vector<std::any> results;
  size_t next = 0;
  bool replaying = false;
};

// The region being run on this thread (nullptr: none, or one that does not keep communication).
KeptResults*& active() {
  thread_local KeptResults* kept = nullptr;
  return kept;
}

class ActiveRegion {
 public:
  explicit ActiveRegion(KeptResults* kept) : prev_(active()) { active() = kept; }
  ~ActiveRegion() { active() = prev_; }
  ActiveRegion(const ActiveRegion&) = delete;
  ActiveRegion& operator=(const ActiveRegion&) = delete;

 private:
  KeptResults* prev_;
};

// Fresh leaves holding the inputs' values, so that the region's graph ends at them.
std::vector<Var> leaves_of(const std::vector<Var>& inputs) {
  std::vector<Var> out;
  out.reserve(inputs.size());
  for (const Var& x : inputs) out.push_back(x.defined() ? Var(x.value(), x.requires_grad()) : Var());
  return out;
}

}  // namespace

std::vector<Var> checkpoint(const Region& fn, const std::vector<Var>& inputs, bool keep_communication) {
  if (!grad_enabled()) return fn(inputs);
  auto kept = keep_communication ? std::make_shared<KeptResults>() : nullptr;
  std::vector<Var> inner;
  {
    // The first run records on a tape of its own, dropped with everything its closures hold.
    Tape scratch;
    TapeScope scope(scratch);
    ActiveRegion region(kept.get());
    inner = fn(leaves_of(inputs));
  }
  std::vector<Var> outputs;
  outputs.reserve(inner.size());
  for (const Var& y : inner) outputs.push_back(y.defined() ? Var(y.value(), y.requires_grad()) : Var());
  bool any = false;
  for (const Var& y : outputs) any = any || y.requires_grad();
  if (!any) return outputs;
  tape().record([fn, inputs, outputs, kept] {
    bool seeded = false;
    for (const Var& y : outputs) seeded = seeded || (y.defined() && y.grad().defined());
    if (!seeded) return;  // nothing downstream used the region
    if (kept) {
      kept->replaying = true;
      kept->next = 0;
    }
    std::vector<Var> leaves = leaves_of(inputs);
    Tape again;
    {
      TapeScope scope(again);
      EnableGrad grad;
      ActiveRegion region(kept.get());
      std::vector<Var> redone = fn(leaves);
      GANNET_CHECK(redone.size() == outputs.size(), "activation checkpointing: the recomputation returned ",
                   redone.size(), " outputs, the first run ", outputs.size());
      for (size_t i = 0; i < redone.size(); ++i) {
        if (!outputs[i].defined() || !outputs[i].grad().defined()) continue;
        GANNET_CHECK(redone[i].defined() && redone[i].shape() == outputs[i].shape(),
                     "activation checkpointing: the recomputation's output ", i, " differs in shape from the first run's");
        if (redone[i].requires_grad()) deposit_grad(redone[i], outputs[i].grad());
      }
      if (kept)
        GANNET_CHECK(kept->next == kept->results.size(), "activation checkpointing: the recomputation took back ",
                     kept->next, " of the ", kept->results.size(), " communication results the first run kept");
    }
    again.run_backward();
    for (size_t i = 0; i < inputs.size(); ++i)
      if (inputs[i].defined() && inputs[i].requires_grad() && leaves[i].grad().defined())
        deposit_grad(inputs[i], leaves[i].grad());
  });
  return outputs;
}

const std::any* kept_communication() {
  KeptResults* k = active();
  if (!k || !k->replaying) return nullptr;
  GANNET_CHECK(k->next < k->results.size(), "activation checkpointing: the recomputation ran more collectives (",
               k->next + 1, ") than the first run kept (", k->results.size(), ")");
  return &k->results[k->next++];
}

void keep_communication(std::any result) {
  KeptResults* k = active();
  if (k && !k->replaying) k->results.push_back(std::move(result));
}

}  // namespace gannet::autograd
