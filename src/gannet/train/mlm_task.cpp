#include "gannet/train/mlm_task.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "gannet/data/mlm_masking.h"
#include "gannet/data/token_file.h"
#include "gannet/data/window_sampler.h"
#include "gannet/core/format_number.h"
#include "gannet/train/encoder_model.h"
#include "gannet/train/evaluate_encoder.h"

namespace gannet::train {

namespace {

data::TokenFile open_token_file(const TrainConfig& cfg, const char* name) {
  namespace fs = std::filesystem;
  const fs::path path = fs::path(cfg.data_dir) / name;
  GANNET_CHECK(fs::exists(path), "missing ", path.string(), ": run `gannet data prepare --out ", cfg.data_dir,
               "` first");
  data::TokenFile f = data::TokenFile::open(path.string());
  GANNET_CHECK(f.vocab_size() <= cfg.encoder.vocab_size, f.path(), " has vocabulary ", f.vocab_size(),
               ", more than model.vocab_size ", cfg.encoder.vocab_size);
  return f;
}

class MlmTask : public TrainTask {
 public:
  explicit MlmTask(const TrainConfig& cfg)
      : cfg_(cfg),
        train_file_(open_token_file(cfg, "train.tok")),
        val_file_(open_token_file(cfg, "val.tok")),
        model_(cfg.encoder),
        sampler_(train_file_, cfg.seq_len, cfg.seed + 1),
        tokens_(Tensor::empty({cfg.micro_batch, cfg.seq_len}, DType::i32)),
        next_(Tensor::empty({cfg.micro_batch, cfg.seq_len}, DType::i32)) {
    GANNET_CHECK(val_file_.vocab_size() == train_file_.vocab_size(), val_file_.path(), " has vocabulary ",
                 val_file_.vocab_size(), ", ", train_file_.path(), " has ", train_file_.vocab_size(),
                 ": they were not made with the same tokenizer");
    model_.encoder.init(cfg.seed);
    masking_.vocab_size = cfg.encoder.vocab_size;
    masking_.mask_prob = cfg.mask_prob;
    masking_.validate();
  }

  CheckpointModel& model() override { return model_; }
  std::unique_ptr<CheckpointModel> make_whole_model() const override {
    return std::make_unique<EncoderModel>(cfg_.encoder);
  }
  dist::BucketPlan buckets() const override {
    return dist::transformer_buckets(model_.parameters(), cfg_.encoder.n_layer);
  }
  std::vector<const dist::ParameterPlacement*> split(dist::ProcessGroups&) override { return {}; }
  double whole_parameter_count() const override { return (double)nn::count_elements(model_.parameters()); }

  // The sampler's generator draws the windows and then their masks: one state to checkpoint.
  Rng& data_rng() override { return sampler_.rng(); }
  void draw(int64_t, bool mine) override {
    sampler_.next(tokens_, next_);
    data::MlmBatch b = data::mask_tokens(tokens_, Tensor(), masking_, sampler_.rng());
    if (mine) batch_ = std::move(b);
  }
  MicroLoss forward(const MicroBatch&) override {
    autograd::Var loss = model_.encoder.mlm_loss(batch_.inputs, Tensor(), batch_.targets);
    return {loss, loss.value().f32()[0]};
  }
  int64_t micro_tokens(int64_t) const override { return cfg_.micro_batch * cfg_.seq_len; }
  int64_t micro_layer_tokens(int64_t s) const override { return micro_tokens(s) * cfg_.encoder.n_layer; }

  Figures validate(int64_t batches) override;
  std::vector<std::string> validation_keys() const override { return {"val_loss", "val_ppl", "val_accuracy"}; }
  std::string describe_validation(int64_t step, const Figures& f) const override {
    return str("step ", step, ": val loss ", fixed(f.values[0], 4), ", masked-token accuracy ",
               fixed(100 * f.values[2], 1), "%");
  }
  std::string describe_data() const override {
    return str("data ", cfg_.data_dir, " (", train_file_.size(), " train tokens), ", fixed(100 * cfg_.mask_prob, 0),
               "% masked");
  }

 private:
  const TrainConfig& cfg_;
  data::TokenFile train_file_, val_file_;
  EncoderModel model_;
  data::WindowSampler sampler_;
  data::MlmMaskingOptions masking_;
  Tensor tokens_, next_;
  data::MlmBatch batch_;  // the kept micro-batch
};

Figures MlmTask::validate(int64_t batches) {
  const MlmEval e =
      evaluate_mlm(model_.encoder, val_file_, cfg_.seq_len, cfg_.micro_batch, batches, masking_, kMlmEvalSeed);
  return {validation_keys(), {e.loss, std::exp(e.loss), e.accuracy}};
}

}  // namespace

std::unique_ptr<TrainTask> make_mlm_task(const TrainConfig& config) { return std::make_unique<MlmTask>(config); }

}  // namespace gannet::train
