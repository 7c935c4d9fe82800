// VL-MoE as the training loop checkpoints it (io/vlmoe_checkpoint.h); for task "vlmoe".
#pragma once
#include "gannet/io/vlmoe_checkpoint.h"
#include "gannet/train/train_task.h"

namespace gannet::train {

class VlMoeModel : public CheckpointModel {
 public:
  explicit VlMoeModel(const models::VlMoeConfig& config) : vlmoe(config) {}
  const nn::ParameterList& parameters() const override { return vlmoe.parameters(); }
  void save(const std::string& path, optim::AdamW* optimizer, const io::TrainState& state) const override {
    io::save_vlmoe_checkpoint(path, vlmoe, optimizer, state);
  }
  void load(const std::string& path, optim::AdamW* optimizer, io::TrainState* state) override {
    io::load_vlmoe_checkpoint(path, vlmoe, optimizer, state);
  }
  void save_sharded(const std::string&, dist::Communicator&, const std::vector<const dist::ParameterPlacement*>&,
                    dist::DataParallel&, const io::ShardedLayout&, const io::TrainState&) const override {
    fail("sharded checkpoints are for the GPT only: set checkpoint.sharded to false");
  }

  models::VlMoe vlmoe;
};

}  // namespace gannet::train
