// The reverse-mode tape: each op that touches a Var needing a gradient records a closure that
// computes its inputs' gradients; backward() replays them in reverse order.
#pragma once
#include <functional>
#include <vector>

#include "gannet/autograd/variable.h"

namespace gannet::autograd {

class Tape {
 public:
  void record(std::function<void()> backward_fn);
  // Seeds d(loss)/d(loss) = 1 (loss must be a single element), runs every recorded closure in
  // reverse, then clears the tape. Parameter gradients accumulate across calls.
  void backward(const Var& loss);
  // Runs every recorded closure in reverse, then clears the tape: for a tape whose outputs the
  // caller has already given their gradients (activation checkpointing's recomputation).
  void run_backward();
  void clear() { fns_.clear(); }
  size_t size() const { return fns_.size(); }

 private:
  std::vector<std::function<void()>> fns_;
};

// The tape ops record onto: one per thread, unless a TapeScope redirects it.
Tape& tape();
// Makes `t` this thread's tape until the scope ends (activation checkpointing records a block's
// ops on a tape of its own). Scopes nest.
class TapeScope {
 public:
  explicit TapeScope(Tape& t);
  ~TapeScope();
  TapeScope(const TapeScope&) = delete;
  TapeScope& operator=(const TapeScope&) = delete;

 private:
  Tape* prev_;
};

// Whether ops record at all; off inside a NoGrad scope (evaluation, generation).
bool grad_enabled();
// Sets the mode until the scope ends, then restores the one before.
class GradModeScope {
 public:
  explicit GradModeScope(bool enabled);
  ~GradModeScope();
  GradModeScope(const GradModeScope&) = delete;
  GradModeScope& operator=(const GradModeScope&) = delete;

 private:
  bool prev_;
};
struct NoGrad : GradModeScope {
  NoGrad() : GradModeScope(false) {}
};
// Turns recording back on inside a NoGrad scope (activation checkpointing's recomputation).
struct EnableGrad : GradModeScope {
  EnableGrad() : GradModeScope(true) {}
};

// Gradient buffer of v for an op's backward to write into. If v has no gradient yet, one is
// allocated (uninitialized) and `accumulate` is false: the op may overwrite it. Otherwise the op
// must add to it.
Tensor& grad_for(const Var& v, bool& accumulate);
// v's gradient, zeroed first when v had none: for backward kernels that add into it.
Tensor& sum_target(const Var& v);
// Adds a freshly computed gradient to v's, or adopts `fresh` as v's gradient when v has none yet
// (so nobody may write `fresh` afterwards).
void deposit_grad(const Var& v, const Tensor& fresh);
// For fused losses whose forward already wrote d(loss)/d(input) into input's value buffer (the
// cross-entropies): records the backward that scales it by loss's upstream gradient and deposits it.
void record_grad_in_value(const Var& input, const Var& loss);

}  // namespace gannet::autograd
