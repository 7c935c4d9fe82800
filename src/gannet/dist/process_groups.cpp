#include "gannet/dist/process_groups.h"

#include "gannet/core/error.h"

namespace gannet::dist {

ParallelLayout ParallelLayout::make(int world, int tensor, int expert) {
  GANNET_CHECK(world >= 1, "parallel: world size ", world, " must be positive");
  GANNET_CHECK(tensor >= 1 && expert >= 1, "parallel: tensor (", tensor, ") and expert (", expert,
               ") degrees must be positive");
  GANNET_CHECK(world % tensor == 0, "parallel: ", world, " processes cannot be split into tensor-parallel groups of ",
               tensor);
  ParallelLayout l;
  l.tensor = tensor;
  l.expert = expert;
  l.data = world / tensor;
  GANNET_CHECK(l.data % expert == 0, "parallel: the data-parallel degree ", l.data, " (", world, " processes / tensor ",
               tensor, ") is not a multiple of expert ", expert);
  return l;
}

RankPlace place_of(const ParallelLayout& l, int world_rank) {
  GANNET_CHECK(world_rank >= 0 && world_rank < l.world(), "parallel: rank ", world_rank, " outside a world of ",
               l.world());
  RankPlace p;
  p.tensor_rank = world_rank % l.tensor;
  p.data_rank = world_rank / l.tensor;
  p.expert_rank = p.data_rank % l.expert;
  p.expert_data_rank = p.data_rank / l.expert;
  const int block = p.data_rank - p.expert_rank;  // first data rank of this expert group
  for (int t = 0; t < l.tensor; ++t) p.tensor_group.push_back(p.data_rank * l.tensor + t);
  for (int d = 0; d < l.data; ++d) p.data_group.push_back(d * l.tensor + p.tensor_rank);
  for (int e = 0; e < l.expert; ++e) p.expert_group.push_back((block + e) * l.tensor + p.tensor_rank);
  for (int d = p.expert_rank; d < l.data; d += l.expert) p.expert_data_group.push_back(d * l.tensor + p.tensor_rank);
  return p;
}

ProcessGroups ProcessGroups::create(Communicator& world, const ParallelLayout& layout) {
  GANNET_CHECK(world.size() == layout.world(), "parallel: layout for ", layout.world(), " processes, ",
               world.size(), " running");
  ProcessGroups g;
  g.layout = layout;
  g.place = place_of(layout, world.rank());
  const RankPlace& p = g.place;
  // Every rank takes part in every split, in the same order; colors name the group by its first member.
  g.tensor = world.split(p.tensor_group.front(), p.tensor_rank);
  g.data = world.split(p.data_group.front(), p.data_rank);
  g.expert = world.split(p.expert_group.front(), p.expert_rank);
  g.expert_data = world.split(p.expert_data_group.front(), p.expert_data_rank);
  g.tensor_data = world.split(0, world.rank());
  g.tensor_expert_data = world.split(p.expert_rank, world.rank());
  return g;
}

}  // namespace gannet::dist
