#include "gannet/dist/placement.h"

#include "gannet/core/error.h"

namespace gannet::dist {

namespace {
const ParameterPlacement* owner(const std::vector<const ParameterPlacement*>& placements, size_t i) {
  for (const ParameterPlacement* p : placements)
    if (p && p->owns(i)) return p;
  return nullptr;
}
}  // namespace

void gather_whole(const std::vector<const ParameterPlacement*>& placements, const std::vector<Tensor>& local,
                  std::vector<Tensor>& whole) {
  GANNET_CHECK(local.size() == whole.size(), "placement: ", local.size(), " local tensors, ", whole.size(), " whole");
  for (size_t i = 0; i < local.size(); ++i) {
    if (const ParameterPlacement* p = owner(placements, i)) p->gather(i, local[i], whole[i]);
    else whole[i].copy_from(local[i]);
  }
}

void slice_whole(const std::vector<const ParameterPlacement*>& placements, const std::vector<Tensor>& whole,
                 std::vector<Tensor>& local) {
  GANNET_CHECK(local.size() == whole.size(), "placement: ", local.size(), " local tensors, ", whole.size(), " whole");
  for (size_t i = 0; i < local.size(); ++i) {
    if (const ParameterPlacement* p = owner(placements, i)) p->slice(i, whole[i], local[i]);
    else local[i].copy_from(whole[i]);
  }
}

}  // namespace gannet::dist
