#include "gannet/train/comm_log.h"

namespace gannet::train {

namespace {
nlohmann::json traffic(const dist::Communicator& g) {
  nlohmann::json comm = nlohmann::json::object();
  for (int c = 0; c < dist::kCollectives; ++c) {
    const dist::CollectiveStats& st = g.stats((dist::Collective)c);
    if (st.calls)
      comm[dist::collective_name((dist::Collective)c)] = {
          {"calls", st.calls}, {"payload_bytes", st.payload_bytes}, {"wire_bytes", st.wire_bytes}};
  }
  return comm;
}
}  // namespace

void add_traffic(nlohmann::json& line, dist::Communicator& world, const dist::ProcessGroups& groups, bool tensor,
                 bool expert) {
  line["comm"] = traffic(*groups.data);
  if (tensor) line["tensor_comm"] = traffic(*groups.tensor);
  if (!expert) return;
  line["expert_comm"] = traffic(*groups.expert);
  // The all-to-all's rows depend on the routing of each rank; the job's sum is what
  // duplicate-token dropping divides by the tensor-parallel degree.
  double a2a = (double)groups.expert->stats(dist::Collective::all_to_all).payload_bytes;
  world.all_reduce_sum(&a2a, 1);
  line["all_to_all_bytes_all_ranks"] = (int64_t)a2a;
  if (groups.expert_data->size() > 1) line["expert_data_comm"] = traffic(*groups.expert_data);
}

}  // namespace gannet::train
