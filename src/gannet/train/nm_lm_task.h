// NxMiFormer on the language model (task "nxm_lm"; compress/nm_config.h): a student GPT of the
// teacher's shape, initialised from the f32 teacher, learns N:M sparse int8/int4 block products
// (ADMM, or one-shot or gradual magnitude pruning) with int8 token-wise inputs (straight-through
// estimators, compress/gpt_student_forward.h) while it distils the teacher's next-token
// distribution: the loss is distillation.logits x soft cross-entropy against the teacher's logits
// at distillation.temperature (the hidden-state and attention terms are the encoder's: they must be
// 0 here), plus ADMM's penalty. Windows as the GPT's training draws them; validation is the
// student's (simulated) next-token loss and perplexity on val.tok. The masks and ADMM's Z and U
// are checkpointed with the weights.
#pragma once
#include <memory>

#include "gannet/train/train_config.h"
#include "gannet/train/train_task.h"

namespace gannet::train {

std::unique_ptr<TrainTask> make_nm_lm_task(const TrainConfig& config);

}  // namespace gannet::train
