// Who writes what in a sharded checkpoint. Every rank describes what it holds of the training
// state (parameter values and AdamW moments) as pieces of the whole tensors: a box of the whole
// tensor (from the parameter placements: tensor-parallel slices, experts) and a run of that box's
// elements (from the ZeRO shard of the flat buckets; the whole box otherwise).
//
// Ownership rule: a piece is written by the lowest world rank among those holding a piece with
// the same tensor and the same place. Ranks that hold a piece with the same place hold the same
// values (data parallelism keeps the replicas identical), so replicated data is written once, and
// the rule needs no knowledge of the parallelism that produced the pieces: it is decided on the
// descriptions the ranks exchange.
#pragma once
#include <cstdint>
#include <vector>

#include "gannet/core/tensor.h"
#include "gannet/dist/communicator.h"
#include "gannet/dist/data_parallel.h"
#include "gannet/dist/placement.h"
#include "gannet/nn/parameter.h"

namespace gannet::dist {

enum class StateTensor { value = 0, first_moment = 1, second_moment = 2 };

// Where a piece of the training state goes: elements [flat_begin, flat_end) in row-major order of
// `box` of the whole tensor `kind` of parameter `param` (in the model's parameter order).
struct PieceKey {
  int64_t param = 0;
  StateTensor kind = StateTensor::value;
  Box box;
  int64_t flat_begin = 0, flat_end = 0;
  bool operator==(const PieceKey&) const = default;
  auto operator<=>(const PieceKey&) const = default;
};

struct HeldPiece {
  PieceKey key;
  Tensor data;  // flat_end - flat_begin elements, in the piece's order (a view where possible)
};

// Everything this rank holds: every parameter's value and moments. `whole_shapes[i]` is the whole
// shape of parameter i; a placement in `placements` that owns parameter i says which boxes of it
// this rank holds, else it holds the whole tensor. The moments come from `dp` (its replicated
// optimizer at stage 0, its shards otherwise).
std::vector<HeldPiece> held_pieces(const nn::ParameterList& params, const std::vector<Shape>& whole_shapes,
                                   const std::vector<const ParameterPlacement*>& placements, DataParallel& dp);

// Collective: every rank's keys, in rank order.
std::vector<std::vector<PieceKey>> exchange_keys(Communicator& world, const std::vector<PieceKey>& mine);

// The ownership rule over every rank's keys: per rank, per key, whether that rank writes it.
std::vector<std::vector<bool>> piece_owners(const std::vector<std::vector<PieceKey>>& keys);

}  // namespace gannet::dist
