// The GPT language-model task: next-token prediction on a prepared data directory's token files
// (train.tok, val.tok), with the data_efficiency block (curriculum batches, random-LTD), MoE
// statistics in the log, and tensor and expert parallelism. Validation: val_loss, val_ppl.
#pragma once
#include <memory>

#include "gannet/train/train_config.h"
#include "gannet/train/train_task.h"

namespace gannet::train {

// Opens and checks the token files and builds the model, initialised from config.seed.
std::unique_ptr<TrainTask> make_gpt_task(const TrainConfig& config);

}  // namespace gannet::train
