// NxMiFormer's compression (task "nxm"; compress/nm_config.h): a student of the teacher's shape,
// initialised from the fine-tuned teacher, learns its N:M sparsity (ADMM, or one-shot or gradual
// magnitude pruning as baselines) and its int8/int4 weights (straight-through estimators) per block
// product while it distils from the teacher (train/distill_task.h). The masks and ADMM's Z and U are
// checkpointed with the weights (compress/nm_student.h); `gannet compress` packs the result. Each
// log line adds the ADMM penalty and the sparse products' mean relative distance from their N:M
// projection (nm_distance: how far the latent weights are from sparse; 0 once masked).
#pragma once
#include <memory>

#include "gannet/train/train_config.h"
#include "gannet/train/train_task.h"

namespace gannet::train {

std::unique_ptr<TrainTask> make_nm_task(const TrainConfig& config);

}  // namespace gannet::train
