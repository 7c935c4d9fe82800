// What the training loop (train/training_loop.h) trains: a task is a model with its batches, its
// loss, its validation figures and its checkpoint format. The loop owns everything tasks share:
// the parallel layout, the data-parallel step, accumulation, clipping, the LR schedule, the
// metrics log, checkpoints, resume and signals. Tasks: the GPT language model (train/gpt_task.h).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gannet/autograd/tape.h"
#include "gannet/core/format_number.h"
#include "gannet/core/rng.h"
#include "gannet/dist/data_parallel.h"
#include "gannet/dist/placement.h"
#include "gannet/dist/process_groups.h"
#include "gannet/io/checkpoint.h"
#include "gannet/io/sharded_checkpoint.h"
#include "gannet/nn/parameter.h"
#include "gannet/optim/adamw.h"

namespace gannet::train {

// A model as the loop checkpoints it: its parameters (in a fixed order) and its file formats.
class CheckpointModel {
 public:
  virtual ~CheckpointModel() = default;
  virtual const nn::ParameterList& parameters() const = 0;
  // The whole-file checkpoint: weights, optimizer moments (when given) and the training state.
  virtual void save(const std::string& path, optim::AdamW* optimizer, const io::TrainState& state) const = 0;
  // Reads one (a whole file or a sharded checkpoint's manifest) into this model, whose config
  // must match the file's.
  virtual void load(const std::string& path, optim::AdamW* optimizer, io::TrainState* state) = 0;
  // The sharded checkpoint (train/sharded_save.h), collective over `world`.
  virtual void save_sharded(const std::string& dir, dist::Communicator& world,
                            const std::vector<const dist::ParameterPlacement*>& placements, dist::DataParallel& dp,
                            const io::ShardedLayout& layout, const io::TrainState& state) const = 0;
};

// One micro-batch as the loop runs it.
struct MicroBatch {
  int64_t step = 0;   // the optimizer step it belongs to
  int64_t index = 0;  // its index among the step's micro-batches over all data-parallel ranks
  int64_t count = 1;  // micro-batches per step over all data-parallel ranks
  // Called by the model after each block's backward (the data-parallel reduction of its gradients).
  const std::function<void(int64_t)>* block_done = nullptr;
};

struct MicroLoss {
  autograd::Var objective;  // what backward runs from
  double reported = 0;      // the task's loss without auxiliary terms, for the log
};

// Validation figures in a fixed order of keys (e.g. val_loss, val_ppl), logged under these keys.
struct Figures {
  std::vector<std::string> keys;
  std::vector<double> values;
  // ", key value" per figure, values to four decimals: the tail of the commands' "final:" line.
  std::string listed() const {
    std::string s;
    for (size_t i = 0; i < keys.size() && i < values.size(); ++i) s += ", " + keys[i] + format_number(" %.4f", values[i]);
    return s;
  }
};

class TrainTask {
 public:
  virtual ~TrainTask() = default;

  // The model being trained (this rank's slices of it once split).
  virtual CheckpointModel& model() = 0;
  // A new, uninitialised model of the same config, whole: checkpoints of a split model are
  // gathered into it, and a resumed split model is cut from it.
  virtual std::unique_ptr<CheckpointModel> make_whole_model() const = 0;
  // The data-parallel reduction's buckets over model().parameters().
  virtual dist::BucketPlan buckets() const = 0;
  // Splits the model over the groups' tensor- and expert-parallel ranks when the config asks for
  // it (a task that cannot be split refuses); returns the placements that split it (none: whole).
  virtual std::vector<const dist::ParameterPlacement*> split(dist::ProcessGroups& groups) = 0;
  // Per parameter, whether tensor parallelism slices it (empty: none is).
  virtual std::vector<bool> tensor_sliced() const { return {}; }
  // Once the data-parallel engine exists: a task may widen its reductions (TED's token dropping).
  virtual void attach(dist::DataParallel& /*dp*/, dist::ProcessGroups& /*groups*/) {}
  // Whether model().save_sharded works; a run of several processes then shards by default.
  virtual bool shards_checkpoints() const { return false; }
  // The whole model's parameter count, every slice counted once.
  virtual double whole_parameter_count() const = 0;

  // The state of the data order, saved in checkpoints.
  virtual Rng& data_rng() = 0;
  // The task's own state, saved in whole checkpoints and read back on resume (tensors shared with
  // the task, filled in place).
  virtual std::vector<std::pair<std::string, Tensor>> state_tensors() { return {}; }
  // The step training starts from (0, or a resumed checkpoint's), once the checkpoint is read.
  virtual void start_at(int64_t /*step*/) {}
  // Draws the next micro-batch of `step`: kept for forward() when `mine`, dropped otherwise (the
  // other data-parallel ranks' batches, drawn so that every rank follows one data order).
  virtual void draw(int64_t step, bool mine) = 0;
  // Forward pass of the last kept micro-batch.
  virtual MicroLoss forward(const MicroBatch& batch) = 0;
  // Tokens of one micro-batch of `step`, and the sum over layers of the tokens each processes
  // (fewer when layers drop tokens).
  virtual int64_t micro_tokens(int64_t step) const = 0;
  // What micro_tokens counts, in the progress line ("token": tokens/s; the graph task's "node").
  virtual const char* unit() const { return "token"; }
  virtual int64_t micro_layer_tokens(int64_t step) const = 0;
  // Adds the task's own figures of the step just done to its log line; a note for the progress bar.
  virtual void describe_step(int64_t /*step*/, nlohmann::json& /*line*/) {}
  virtual std::string progress_note() const { return ""; }

  // Validation on at most `batches` batches (0: all). The loop runs it on the lead rank only, or
  // on every rank (on the same batches) when the model is split.
  virtual Figures validate(int64_t batches) = 0;
  virtual std::vector<std::string> validation_keys() const = 0;
  // The progress bar's line for a validation.
  virtual std::string describe_validation(int64_t step, const Figures& figures) const = 0;
  // The training data, for the first lines on stderr: e.g. "data DIR (N train tokens)".
  virtual std::string describe_data() const = 0;
  // Extra lines about the task's options for stderr (each ending in a newline), or "".
  virtual std::string describe_options() const { return ""; }
};

}  // namespace gannet::train
