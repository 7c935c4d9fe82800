// Process groups of hybrid parallelism (DeepSpeed-TED's layout): tensor-parallel ranks innermost,
// then data parallelism; the expert-parallel groups split each data-parallel group into blocks of
// `expert` consecutive members, and the expert-data-parallel group joins the members with the same
// place in those blocks (the ranks that hold copies of the same experts).
//   world rank = data_rank * tensor + tensor_rank
#pragma once
#include <memory>
#include <vector>

#include "gannet/dist/communicator.h"

namespace gannet::dist {

struct ParallelLayout {
  int tensor = 1;  // tensor-parallel degree (Megatron-style split of every block)
  int expert = 1;  // expert-parallel degree (experts spread over this many data-parallel ranks)
  int data = 1;    // data-parallel degree: world / tensor

  // From the world size and the tensor and expert degrees; errors name what does not divide.
  static ParallelLayout make(int world, int tensor, int expert);
  int world() const { return tensor * data; }
};

// Where one world rank sits in every group, and which world ranks each of its groups holds.
struct RankPlace {
  int tensor_rank, data_rank, expert_rank, expert_data_rank;
  std::vector<int> tensor_group, data_group, expert_group, expert_data_group;
};
RankPlace place_of(const ParallelLayout& layout, int world_rank);

// The communicators of one rank's groups, split from the world.
struct ProcessGroups {
  ParallelLayout layout;
  RankPlace place;
  std::unique_ptr<Communicator> tensor, data, expert, expert_data;
  // For duplicate-token dropping, whose MoE gradients are partial per tensor rank: every rank
  // (tensor x data), and the ranks holding the same experts (tensor x expert-data).
  std::unique_ptr<Communicator> tensor_data, tensor_expert_data;
  static ProcessGroups create(Communicator& world, const ParallelLayout& layout);
};

}  // namespace gannet::dist
