// The GPT as the training loop checkpoints it (io/checkpoint.h, and sharded checkpoints): for the
// GPT's tasks (train/gpt_task.h, train/nm_lm_task.h).
#pragma once
#include "gannet/io/checkpoint.h"
#include "gannet/models/gpt.h"
#include "gannet/train/sharded_save.h"
#include "gannet/train/train_task.h"

namespace gannet::train {

class GptModel : public CheckpointModel {
 public:
  explicit GptModel(const models::GptConfig& config) : gpt(config) {}
  const nn::ParameterList& parameters() const override { return gpt.parameters(); }
  void save(const std::string& path, optim::AdamW* optimizer, const io::TrainState& state) const override {
    io::save_checkpoint(path, gpt, optimizer, state);
  }
  void load(const std::string& path, optim::AdamW* optimizer, io::TrainState* state) override {
    io::load_checkpoint(path, gpt, optimizer, state);
  }
  void save_sharded(const std::string& dir, dist::Communicator& world,
                    const std::vector<const dist::ParameterPlacement*>& placements, dist::DataParallel& dp,
                    const io::ShardedLayout& layout, const io::TrainState& state) const override {
    save_sharded_checkpoint(dir, world, gpt, placements, dp, layout, state);
  }

  models::Gpt gpt;
};

}  // namespace gannet::train
