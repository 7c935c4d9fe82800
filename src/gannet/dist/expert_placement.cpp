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

void ExpertPlacement::gather(size_t i, const Tensor& local, Tensor& whole) const {
  GANNET_CHECK(whole.numel() == local.numel() * group_.size(), "expert placement: tensor ", i, " is ",
               whole.describe(), ", this rank holds ", local.describe());
  group_.all_gather(local.f32(), whole.f32(), local.numel());
}

void ExpertPlacement::slice(size_t i, const Tensor& whole, Tensor& local) const {
  GANNET_CHECK(whole.numel() == local.numel() * group_.size(), "expert placement: tensor ", i, " is ",
               whole.describe(), ", this rank holds ", local.describe());
  std::memcpy(local.f32(), whole.f32() + group_.rank() * local.numel(), (size_t)local.numel() * 4);
}

std::vector<Box> ExpertPlacement::boxes(size_t i, const Shape& whole) const {
  const int N = group_.size(), r = group_.rank();
  GANNET_CHECK(!whole.empty() && whole[0] % N == 0, "expert placement: tensor ", i, " of ", whole.size(),
               " dimensions cannot be split over ", N, " ranks");
  Box b;
  for (int64_t n : whole) b.emplace_back(0, n);
  const int64_t L = whole[0] / N;
  b[0] = {r * L, (r + 1) * L};
  return {b};
}

}  // namespace gannet::dist
