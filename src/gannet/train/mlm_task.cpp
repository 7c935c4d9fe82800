#include "gannet/train/mlm_task.h"

#include <cmath>
#include <cstdio>

#include "gannet/core/format_number.h"
#include "gannet/data/mlm_masking.h"
#include "gannet/data/window_sampler.h"
#include "gannet/train/encoder_task.h"
#include "gannet/train/evaluate_encoder.h"
#include "gannet/train/prepared_token_files.h"

namespace gannet::train {

namespace {

class MlmTask : public EncoderTask {
 public:
  explicit MlmTask(const TrainConfig& cfg)
      : EncoderTask(cfg.encoder),
        cfg_(cfg),
        files_(open_prepared_token_files(cfg.data_dir, cfg.encoder.vocab_size)),
        sampler_(files_.train, cfg.seq_len, cfg.seed + 1),
        tokens_(Tensor::empty({cfg.micro_batch, cfg.seq_len}, DType::i32)),
        next_(Tensor::empty({cfg.micro_batch, cfg.seq_len}, DType::i32)) {
    model_.encoder.init(cfg.seed);
    masking_.vocab_size = cfg.encoder.vocab_size;
    masking_.mask_prob = cfg.mask_prob;
    masking_.validate();
  }

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
    return str("data ", cfg_.data_dir, " (", files_.train.size(), " train tokens), ", fixed(100 * cfg_.mask_prob, 0),
               "% masked");
  }

 private:
  const TrainConfig& cfg_;
  PreparedTokenFiles files_;
  data::WindowSampler sampler_;
  data::MlmMaskingOptions masking_;
  Tensor tokens_, next_;
  data::MlmBatch batch_;  // the kept micro-batch
};

Figures MlmTask::validate(int64_t batches) {
  const MlmEval e =
      evaluate_mlm(model_.encoder, files_.val, cfg_.seq_len, cfg_.micro_batch, batches, masking_, kMlmEvalSeed);
  return {validation_keys(), {e.loss, std::exp(e.loss), e.accuracy}};
}

}  // namespace

std::unique_ptr<TrainTask> make_mlm_task(const TrainConfig& config) { return std::make_unique<MlmTask>(config); }

}  // namespace gannet::train
