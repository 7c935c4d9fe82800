// Saving a training run as a sharded checkpoint (format: io/sharded_checkpoint.h; who writes
// what: dist/checkpoint_shards.h). Crash safety: each save's shards go to a directory of their own
// (step-<step>-<tag>), every file is written to a temporary name and renamed, and rank 0 writes the
// manifest only after every rank has finished its shard; only then are the previous save's shard
// directories removed. A crash at any point leaves the previous manifest and the shards it names
// intact.
#pragma once
#include <string>
#include <vector>

#include "gannet/dist/communicator.h"
#include "gannet/dist/data_parallel.h"
#include "gannet/dist/placement.h"
#include "gannet/io/sharded_checkpoint.h"
#include "gannet/models/gpt.h"

namespace gannet::train {

// Collective over `world`. `model` holds this rank's parameters (slices where `placements` split
// them), `dp` its optimizer state. Returns the manifest's path (<dir>/manifest.json). The shard
// directories must be visible to rank 0 (a shared filesystem under mpirun on several machines).
std::string save_sharded_checkpoint(const std::string& dir, dist::Communicator& world, const models::Gpt& model,
                                    const std::vector<const dist::ParameterPlacement*>& placements,
                                    dist::DataParallel& dp, const io::ShardedLayout& layout,
                                    const io::TrainState& state);

}  // namespace gannet::train
