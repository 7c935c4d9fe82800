#include "gannet/train/gpt_task.h"

#include <cstdio>

#include "gannet/core/format_number.h"
#include "gannet/data/curriculum.h"
#include "gannet/data/window_sampler.h"
#include "gannet/dist/expert_placement.h"
#include "gannet/dist/tensor_parallel.h"
#include "gannet/models/gpt.h"
#include "gannet/train/evaluate.h"
#include "gannet/train/gpt_model.h"
#include "gannet/train/moe_log.h"
#include "gannet/train/prepared_token_files.h"
#include "gannet/train/sharded_save.h"

namespace gannet::train {

namespace {

class GptTask : public TrainTask {
 public:
  explicit GptTask(const TrainConfig& cfg);

  CheckpointModel& model() override { return model_; }
  std::unique_ptr<CheckpointModel> make_whole_model() const override {
    return std::make_unique<GptModel>(cfg_.model);
  }
  dist::BucketPlan buckets() const override {
    return dist::transformer_buckets(model_.parameters(), cfg_.model.n_layer);
  }
  std::vector<const dist::ParameterPlacement*> split(dist::ProcessGroups& groups) override;
  std::vector<bool> tensor_sliced() const override {
    return tensor_parallel_ ? tensor_parallel_->sliced() : std::vector<bool>{};
  }
  void attach(dist::DataParallel& dp, dist::ProcessGroups& groups) override {
    if (cfg_.duplicate_token_dropping) dp.reduce_moe_over_tensor_group(*groups.tensor_data, *groups.tensor_expert_data);
  }
  bool shards_checkpoints() const override { return true; }
  double whole_parameter_count() const override;

  Rng& data_rng() override { return curriculum_ ? curriculum_->rng() : sampler_.rng(); }
  void draw(int64_t step, bool mine) override;
  MicroLoss forward(const MicroBatch& batch) override;
  int64_t micro_tokens(int64_t step) const override { return rows_at(step) * len_at(step); }
  int64_t micro_layer_tokens(int64_t step) const override {
    return rows_at(step) * (len_at(step) * (cfg_.model.n_layer - ltd_layers_) + kept_at(step) * ltd_layers_);
  }
  void describe_step(int64_t step, nlohmann::json& line) override;
  std::string progress_note() const override;

  Figures validate(int64_t batches) override {
    const EvalResult ev = evaluate(model_.gpt, files_.val, cfg_.seq_len, cfg_.micro_batch, batches);
    return {validation_keys(), {ev.loss, ev.perplexity}};
  }
  std::vector<std::string> validation_keys() const override { return {"val_loss", "val_ppl"}; }
  std::string describe_validation(int64_t step, const Figures& f) const override {
    return str("step ", step, ": val loss ", fixed(f.values[0], 4), ", perplexity ", fixed(f.values[1], 1));
  }
  std::string describe_data() const override {
    return str("data ", cfg_.data_dir, " (", files_.train.size(), " train tokens)");
  }
  std::string describe_options() const override;

 private:
  int64_t rows_at(int64_t s) const { return curriculum_ ? curriculum_->rows_at(s, cfg_.micro_batch) : cfg_.micro_batch; }
  int64_t len_at(int64_t s) const { return curriculum_ ? curriculum_->len_at(s) : cfg_.seq_len; }
  int64_t kept_at(int64_t s) const {
    return ltd_layers_ ? std::min(cfg_.data_efficiency.random_ltd.schedule.at(s), len_at(s)) : len_at(s);
  }

  const TrainConfig& cfg_;
  PreparedTokenFiles files_;
  GptModel model_;
  std::unique_ptr<dist::TensorParallel> tensor_parallel_;
  std::unique_ptr<dist::ExpertPlacement> expert_placement_;
  data::WindowSampler sampler_;
  std::unique_ptr<data::CurriculumSampler> curriculum_;
  const int64_t ltd_layers_;
  nn::RandomLtdPlan ltd_plan_;
  Tensor tokens_, targets_;              // the kept micro-batch
  Tensor other_tokens_, other_targets_;  // the other ranks' micro-batches, drawn and dropped
  const bool moe_;
  MoeLog moe_log_;
};

GptTask::GptTask(const TrainConfig& cfg)
    : cfg_(cfg),
      files_(open_prepared_token_files(cfg.data_dir, cfg.model.vocab_size)),
      model_(cfg.model),
      sampler_(files_.train, cfg.seq_len, cfg.seed + 1),
      ltd_layers_(cfg.data_efficiency.random_ltd.enabled ? (int64_t)cfg.data_efficiency.random_ltd.layers.size() : 0),
      moe_(cfg.model.moe.enabled()) {
  model_.gpt.init(cfg.seed);  // whole on every rank, so that every layout starts from the same weights
  model_.gpt.set_activation_checkpointing(cfg.activation_checkpointing, cfg.keep_communication);
  const DataEfficiencyConfig& de = cfg.data_efficiency;
  if (de.curriculum.enabled)
    curriculum_ = std::make_unique<data::CurriculumSampler>(files_.train, cfg.seq_len, de.curriculum, de.seed + 1);
  ltd_plan_.layers.assign((size_t)cfg.model.n_layer, false);
  for (int64_t l : de.random_ltd.layers) ltd_plan_.layers[(size_t)l] = true;
  for (Tensor* t : {&tokens_, &targets_, &other_tokens_, &other_targets_})
    *t = Tensor::empty({cfg.micro_batch, cfg.seq_len}, DType::i32);
}

std::vector<const dist::ParameterPlacement*> GptTask::split(dist::ProcessGroups& groups) {
  const bool ep = cfg_.expert_parallel > 1;
  GANNET_CHECK(!ep || moe_, "parallel.expert ", cfg_.expert_parallel, " needs a model with a moe block");
  if (cfg_.tensor_parallel > 1)
    tensor_parallel_ = std::make_unique<dist::TensorParallel>(
        model_.gpt, *groups.tensor, dist::TensorParallelOptions{cfg_.duplicate_token_dropping, cfg_.vocab_parallel});
  if (ep) expert_placement_ = std::make_unique<dist::ExpertPlacement>(model_.gpt, *groups.expert);
  std::vector<const dist::ParameterPlacement*> placements;
  if (tensor_parallel_) placements.push_back(tensor_parallel_.get());
  if (expert_placement_) placements.push_back(expert_placement_.get());
  return placements;
}

double GptTask::whole_parameter_count() const {
  const nn::ParameterList& params = model_.parameters();
  double whole = 0;  // slices counted once per holder
  for (size_t i = 0; i < params.size(); ++i)
    whole += (double)params[i].var.value().numel() *
             (tensor_parallel_ && tensor_parallel_->owns(i)     ? cfg_.tensor_parallel
              : expert_placement_ && expert_placement_->owns(i) ? cfg_.expert_parallel
                                                                : 1);
  return whole;
}

void GptTask::draw(int64_t step, bool mine) {
  Tensor& tk = mine ? tokens_ : other_tokens_;
  Tensor& tg = mine ? targets_ : other_targets_;
  if (curriculum_) curriculum_->next(step, cfg_.micro_batch, tk, tg);
  else sampler_.next(tk, tg);
}

MicroLoss GptTask::forward(const MicroBatch& batch) {
  const uint64_t draw_index = (uint64_t)(batch.step * batch.count + batch.index + 1);
  ltd_plan_.keep = kept_at(batch.step);
  ltd_plan_.seed = cfg_.data_efficiency.seed + 0x9E3779B97F4A7C15ull * draw_index;
  models::Gpt& gpt = model_.gpt;
  gpt.set_random_ltd(ltd_layers_ ? &ltd_plan_ : nullptr);
  nn::MoePass moe_pass;
  moe_pass.training = true;
  moe_pass.seed = cfg_.seed + 0xD1B54A32D192ED03ull * draw_index;
  gpt.set_block_done_hook(batch.block_done);
  autograd::Var loss = gpt.loss(tokens_, targets_, moe_ ? &moe_pass : nullptr);
  gpt.set_random_ltd(nullptr);
  gpt.set_block_done_hook(nullptr);
  const double aux = moe_pass.aux_loss.defined() ? moe_pass.aux_loss.value().f32()[0] : 0.0;
  if (moe_) moe_log_.add(moe_pass.layers, aux);
  // The language-model loss, comparable with a dense model's.
  return {loss, loss.value().f32()[0] - aux};
}

void GptTask::describe_step(int64_t step, nlohmann::json& line) {
  if (curriculum_) {
    line["seq_len"] = len_at(step);
    nlohmann::json d = nlohmann::json::object();
    std::vector<int64_t> ds = curriculum_->difficulties(step);
    for (size_t m = 0; m < ds.size(); ++m) d[cfg_.data_efficiency.curriculum.metrics[m].name] = ds[m];
    line["difficulty"] = d;
  }
  if (ltd_layers_) line["kept_tokens"] = kept_at(step);
  if (moe_) line["moe"] = moe_log_.take();
}

std::string GptTask::progress_note() const {
  return moe_ ? " | dropped " + fixed(100 * moe_log_.last_dropped(), 1) + "%" : "";
}

std::string GptTask::describe_options() const {
  if (!curriculum_ && !ltd_layers_) return "";
  return str("gannet train: data efficiency:", curriculum_ ? " curriculum" : "", ltd_layers_ ? " random-LTD" : "",
             cfg_.data_efficiency.layer_token_lr.enabled ? " layer-token LR" : "", "\n");
}

}  // namespace

std::unique_ptr<TrainTask> make_gpt_task(const TrainConfig& config) { return std::make_unique<GptTask>(config); }

}  // namespace gannet::train
