// Each process's communication in one training step, per process group, for the metrics log.
#pragma once
#include <nlohmann/json.hpp>

#include "gannet/dist/process_groups.h"

namespace gannet::train {

// Adds "comm" (the data-parallel group), and with tensor / expert parallelism "tensor_comm",
// "expert_comm", "expert_data_comm" and the job's all-to-all bytes (a collective over `world`):
// per collective, its calls, payload bytes and wire bytes since the groups' stats were reset.
void add_traffic(nlohmann::json& line, dist::Communicator& world, const dist::ProcessGroups& groups, bool tensor,
                 bool expert);

}  // namespace gannet::train
