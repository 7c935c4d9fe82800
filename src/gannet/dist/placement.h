// How a model's parameters are split over processes (tensor-parallel slices, expert-parallel
// experts), so that checkpoints stay whole: each placement gathers the parameters it split into
// their whole form to save, and cuts its slice from a whole tensor to load. Parameters no placement
// owns are the same on every rank and copied as they are.
#pragma once
#include <utility>
#include <vector>

#include "gannet/core/tensor.h"

namespace gannet::dist {

// A region of a whole tensor: one [begin, end) range per dimension.
using Box = std::vector<std::pair<int64_t, int64_t>>;

class ParameterPlacement {
 public:
  virtual ~ParameterPlacement() = default;
  // Whether parameter i (in the model's parameter order) is split by this placement.
  virtual bool owns(size_t i) const = 0;
  // Collective over the placement's group: `whole` from every rank's `local`.
  virtual void gather(size_t i, const Tensor& local, Tensor& whole) const = 0;
  // This rank's part of `whole`, without communication.
  virtual void slice(size_t i, const Tensor& whole, Tensor& local) const = 0;
  // The regions of the whole tensor (of shape `whole`) that this rank holds of parameter i, in the
  // order of its local data: the local tensor is the concatenation of the boxes' elements, each
  // box in row-major order. For sharded checkpoints.
  virtual std::vector<Box> boxes(size_t i, const Shape& whole) const = 0;
};

// whole[i] for every parameter: gathered by the placement that owns it, copied otherwise. Every
// rank must call it (collective).
void gather_whole(const std::vector<const ParameterPlacement*>& placements, const std::vector<Tensor>& local,
                  std::vector<Tensor>& whole);
// local[i] for every parameter, cut from whole tensors.
void slice_whole(const std::vector<const ParameterPlacement*>& placements, const std::vector<Tensor>& whole,
                 std::vector<Tensor>& local);

}  // namespace gannet::dist
