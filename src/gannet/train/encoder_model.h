// The encoder as the training loop checkpoints it (io/encoder_checkpoint.h); for the encoder tasks.
#pragma once
#include "gannet/io/encoder_checkpoint.h"
#include "gannet/train/train_task.h"

namespace gannet::train {

class EncoderModel : public CheckpointModel {
 public:
  explicit EncoderModel(const models::EncoderConfig& config) : encoder(config) {}
  const nn::ParameterList& parameters() const override { return encoder.parameters(); }
  void save(const std::string& path, optim::AdamW* optimizer, const io::TrainState& state) const override {
    io::save_encoder_checkpoint(path, encoder, optimizer, state);
  }
  void load(const std::string& path, optim::AdamW* optimizer, io::TrainState* state) override {
    io::load_encoder_checkpoint(path, encoder, optimizer, state);
  }
  void save_sharded(const std::string&, dist::Communicator&, const std::vector<const dist::ParameterPlacement*>&,
                    dist::DataParallel&, const io::ShardedLayout&, const io::TrainState&) const override {
    fail("sharded checkpoints are for the GPT only: set checkpoint.sharded to false");
  }

  models::Encoder encoder;
};

}  // namespace gannet::train
