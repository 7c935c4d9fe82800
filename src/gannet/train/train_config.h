// The training config (JSON). Keys follow DeepSpeed's where it has one for the same thing:
// train_batch_size, train_micro_batch_size_per_gpu, gradient_accumulation_steps,
// gradient_clipping, optimizer {type, params}, scheduler {type, params}, data_efficiency (see
// train/data_efficiency.h), zero_optimization {stage, reduce_bucket_size, allgather_bucket_size},
// activation_checkpointing {enabled, keep_communication} (gannet's own keys: DeepSpeed turns it on
// in the model's code). The `parallel` block {tensor, expert, duplicate_token_dropping,
// vocab_parallel} is gannet's own: the data-parallel degree is the number of processes (mpirun -np
// N) divided by the tensor-parallel degree. Unknown keys are errors.
#pragma once
#include <optional>
#include <string>

#include "gannet/compress/nm_config.h"
#include "gannet/compress/xtc_config.h"
#include "gannet/models/encoder.h"
#include "gannet/models/gpt.h"
#include "gannet/models/graphsage.h"
#include "gannet/models/vlmoe.h"
#include "gannet/optim/adamw.h"
#include "gannet/optim/schedule.h"
#include "gannet/train/data_efficiency.h"

namespace gannet::train {

struct TrainConfig {
  // "task": "lm" (the GPT, next-token prediction), "mlm" (the encoder's masked-language-model
  // pre-training on the token files), "classify" (the encoder fine-tuned on a classification
  // set of `gannet data tasks`) or "xtc" (a classifier compressed by XTC: a binary or ternary
  // student distilled from a fine-tuned teacher on a classification set; compress/xtc_config.h) or
  // "nxm" (NxMiFormer: an N:M sparse int8/int4 student of the teacher's shape, compress/nm_config.h).
  std::string task = "lm";
  models::GptConfig model;               // the "model" block of "lm"
  models::EncoderConfig encoder;         // the "model" block of "mlm" and "classify" (num_classes: the data's)
  // "graph": GraphSAGE (or its features-only MLP) on a node-classification set of `gannet graph
  // prepare`: the "model" block {type, hidden, layers, dropout} (in_dim and num_classes: the
  // data's), graph.fanouts (per hop from the seeds outwards, one per layer) and graph.features
  // ("raw": the f32 matrix; otherwise a BiFeat file of `gannet graph compress`). A micro-batch is
  // train_micro_batch_size_per_gpu seed nodes.
  models::GraphSageConfig graph_model;
  std::vector<int> fanouts = {15, 10};
  std::string graph_features = "raw";
  // "vlmoe": VL-MoE pre-trained with ITC on the image-text pairs of `gannet data prepare --dataset
  // glyphs` or `fashion-mnist` (<data.dir>/train), validated by retrieval on vlmoe.eval_split
  // (train/vlmoe_task.h): the "model" block is models::VlMoeConfig's keys with its moe block
  // (io/vlmoe_checkpoint.h; vocab_size: the tokenizer's). A micro-batch is
  // train_micro_batch_size_per_gpu pairs.
  models::VlMoeConfig vlmoe;
  // vlmoe.eval_split: glyphs' "test_chars" or "test_blocks", Fashion-MNIST's "test"; empty: the data's
  // default (test_chars, test). Checked against the data's format when the task reads it.
  std::string vlmoe_eval_split;
  double vlmoe_itm_weight = 0;  // vlmoe.itm_weight: ITM's weight beside ITC (0: ITC alone, no ITM head)
  double vlmoe_mlm_weight = 0;  // vlmoe.mlm_weight: MLM's weight (0: none, no MLM head)
  double vlmoe_mim_weight = 0;  // vlmoe.mim_weight: MIM's weight (0: none, no mask token or MIM head)
  float vlmoe_mlm_mask_ratio = 0.15f;  // vlmoe.mlm_mask_ratio: the share of a text's words masked, in (0, 1)
  float vlmoe_mim_mask_ratio = 0.4f;   // vlmoe.mim_mask_ratio: the share of an image's patches masked, in (0, 1)
  float mask_prob = 0.15f;               // mlm.mask_prob: the share of tokens masked (BERT: 15%)
  std::string classify_set;              // data.task of "classify": <data.dir>/tasks/<name>/{train,val}.safetensors
  std::string init_checkpoint;           // init.checkpoint of "classify": an encoder whose trunk starts the model;
                                         // of "xtc"/"nxm": a student (of the same shape) to start from
  std::string teacher_checkpoint;        // teacher.checkpoint of "xtc": the fine-tuned classifier (its config: `encoder`)
  compress::XtcConfig xtc;               // compression_training and distillation of "xtc"
  compress::NmConfig nxm;                // compression_training and distillation of "nxm"
  std::string data_dir = "data/brown";  // holds train.tok, val.tok (from `gannet data prepare`); "graph": data/debian-graph
  int64_t seq_len = 0;                  // 0: the model's n_ctx
  int64_t micro_batch = 8;              // train_micro_batch_size_per_gpu
  int64_t grad_accum = 1;               // gradient_accumulation_steps
  int64_t steps = 1000;                 // train_steps: optimizer updates
  float grad_clip = 1.0f;               // gradient_clipping (0: off)
  optim::AdamWOptions adamw;
  optim::CosineSchedule schedule;       // scheduler WarmupCosineLR
  int64_t eval_interval = 100;          // steps between validations (0: only at the end)
  int64_t eval_batches = 20;            // validation batches (of micro_batch windows) per validation (0: all)
  int64_t checkpoint_interval = 0;      // steps between checkpoints (0: only at the end)
  std::string out_dir = "runs/default"; // checkpoint.safetensors or checkpoint/ (sharded), metrics.jsonl
  // checkpoint.sharded: each process writes its own shard and rank 0 a manifest (<out_dir>/checkpoint/),
  // or one whole file (<out_dir>/checkpoint.safetensors). Absent: sharded when there is more than one process.
  std::optional<bool> checkpoint_sharded;
  uint64_t seed = 1234;
  int threads = 0;                      // 0: all cores
  DataEfficiencyConfig data_efficiency; // curriculum, random-LTD, layer-token LR (data_efficiency block)
  int tensor_parallel = 1;              // parallel.tensor
  int expert_parallel = 1;              // parallel.expert
  bool duplicate_token_dropping = false; // parallel.duplicate_token_dropping (TED; tensor > 1, MoE)
  bool vocab_parallel = true;           // parallel.vocab_parallel: split the token embedding / LM head (tensor > 1)
  int zero_stage = 0;                   // zero_optimization.stage: 0, 1 (optimizer state) or 2 (+ gradients)
  int64_t reduce_bucket_size = 1 << 20;    // zero_optimization: elements per gradient reduction (0: whole buckets)
  int64_t allgather_bucket_size = 1 << 20; // zero_optimization: elements per all-gather of the step (0: whole)
  bool activation_checkpointing = false; // activation_checkpointing.enabled: recompute each block in backward
  bool keep_communication = true;       // activation_checkpointing.keep_communication: no collective twice
  std::string text;                     // the config as given, stored in checkpoints
};

TrainConfig read_train_config(const std::string& path);
// The same from JSON text; `name` stands for the file in messages.
TrainConfig parse_train_config(const std::string& text, const std::string& name);

}  // namespace gannet::train
