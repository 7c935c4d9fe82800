// The seam where expert parallelism plugs in. An MoE layer hands its expert buffer (rows grouped
// by expert, kernels::MoeRouting::offsets) to an ExpertExchange before the experts run, and the
// experts' output back to it after. On one process both are the identity; the distributed build
// implements them as all-to-alls over the expert-parallel group (dist/), so the layer does not
// change when experts live on other ranks.
#pragma once
#include <cstdint>
#include <vector>

#include "gannet/autograd/variable.h"

namespace gannet::nn {

class ExpertExchange {
 public:
  virtual ~ExpertExchange() = default;
  // Rows for this process's experts; `offsets` is rewritten to index the returned buffer.
  virtual autograd::Var dispatch(const autograd::Var& rows, std::vector<int32_t>& offsets) const = 0;
  // The inverse: local experts' output rows back to the layout dispatch() received.
  virtual autograd::Var combine(const autograd::Var& rows) const = 0;
};

// One process: every expert is local and nothing moves.
class LocalExpertExchange final : public ExpertExchange {
 public:
  autograd::Var dispatch(const autograd::Var& rows, std::vector<int32_t>&) const override { return rows; }
  autograd::Var combine(const autograd::Var& rows) const override { return rows; }
};

}  // namespace gannet::nn
