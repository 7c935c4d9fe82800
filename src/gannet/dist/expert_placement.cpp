#include "gannet/dist/expert_placement.h"

#include <cstring>

#include "gannet/core/error.h"
#include "gannet/dist/data_parallel.h"

namespace gannet::dist {

ExpertPlacement::ExpertPlacement(models::Gpt& model, Communicator& group) : group_(group) {
  const int N = group.size(), r = group.rank();
  for (nn::Moe* moe : model.moe_layers()) {
    GANNET_CHECK(moe->experts % N == 0, "expert parallelism: block ", moe->block, " has ", moe->experts,
                 " experts, not a multiple of parallel.expert ", N);
    const int64_t L = moe->experts / N;
    for (const nn::Var* v : {&moe->c_fc_w, &moe->c_fc_b, &moe->c_proj_w, &moe->c_proj_b}) {
      const Tensor whole = v->value();
      Tensor mine = Tensor::empty([&] {
        Shape s = whole.shape();
        s[0] = L;
        return s;
      }());
      mine.copy_from(whole.slice(r * L, (r + 1) * L));
      v->value() = mine;
    }
    exchanges_.push_back(std::make_unique<ExpertAllToAll>(group, moe->experts));
    moe->exchange = exchanges_.back().get();
  }
  for (const auto& p : model.parameters()) expert_.push_back(is_expert_parameter(p.name));
}

void ExpertPlacement::gather(const std::vector<Tensor>& local, std::vector<Tensor>& full) const {
  GANNET_CHECK(local.size() == expert_.size() && full.size() == expert_.size(), "expert placement: ",
               local.size(), " and ", full.size(), " tensors for ", expert_.size(), " parameters");
  for (size_t i = 0; i < local.size(); ++i) {
    GANNET_CHECK(full[i].numel() == local[i].numel() * (expert_[i] ? group_.size() : 1),
                 "expert placement: tensor ", i, " is ", full[i].describe(), ", this rank holds ", local[i].describe());
    if (expert_[i]) group_.all_gather(local[i].f32(), full[i].f32(), local[i].numel());
    else full[i].copy_from(local[i]);
  }
}

void ExpertPlacement::slice(const std::vector<Tensor>& full, std::vector<Tensor>& local) const {
  GANNET_CHECK(local.size() == expert_.size() && full.size() == expert_.size(), "expert placement: ",
               local.size(), " and ", full.size(), " tensors for ", expert_.size(), " parameters");
  for (size_t i = 0; i < local.size(); ++i) {
    GANNET_CHECK(full[i].numel() == local[i].numel() * (expert_[i] ? group_.size() : 1),
                 "expert placement: tensor ", i, " is ", full[i].describe(), ", this rank holds ", local[i].describe());
    const int64_t n = local[i].numel(), at = expert_[i] ? group_.rank() * n : 0;
    std::memcpy(local[i].f32(), full[i].f32() + at, (size_t)n * 4);
  }
}

}  // namespace gannet::dist
