// Expert parallelism: the MoE layer's expert exchange (nn/expert_exchange.h) as all-to-alls over
// the expert-parallel group. Expert e of E lives on group rank e / (E / size); each rank sends the
// rows it routed to another rank's experts there, the experts run on the rows of every rank, and
// the outputs go back. Both directions are differentiable: the backward of one is the other.
#pragma once
#include <memory>

#include "gannet/dist/communicator.h"
#include "gannet/nn/expert_exchange.h"

namespace gannet::dist {

class ExpertAllToAll final : public nn::ExpertExchange {
 public:
  // `experts`: the layer's experts in all (a multiple of group.size()); `group` outlives this.
  ExpertAllToAll(Communicator& group, int64_t experts);
  int64_t local_experts() const { return experts_ / group_.size(); }
  int64_t first_local_expert() const { return group_.rank() * local_experts(); }

  autograd::Var dispatch(const autograd::Var& rows, std::vector<int32_t>& offsets) const override;
  autograd::Var combine(const autograd::Var& rows) const override;

  // Who sends how many rows to whom in one layer's exchange (shared by its forward and backward).
  struct Plan {
    int64_t width = 0;                        // floats per row
    std::vector<int64_t> send_rows, recv_rows;  // per group rank
    // counts[s][j]: rows rank s routed to local expert j
    std::vector<std::vector<int64_t>> counts;
    int64_t received = 0;                     // rows this rank's experts process
  };

 private:
  // The dispatch's output node over the rows received, with its backward exchange.
  autograd::Var record_dispatch(const autograd::Var& rows, const Tensor& received, std::shared_ptr<const Plan> plan,
                                bool rg) const;
  Communicator& group_;
  int64_t experts_;
  mutable std::shared_ptr<const Plan> last_;  // dispatch's plan, for the combine that follows it
};

}  // namespace gannet::dist
