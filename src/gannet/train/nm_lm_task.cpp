#include "gannet/train/nm_lm_task.h"

#include "gannet/autograd/distill_ops.h"
#include "gannet/autograd/ops.h"
#include "gannet/compress/gpt_student_forward.h"
#include "gannet/compress/nm_student.h"
#include "gannet/core/format_number.h"
#include "gannet/data/window_sampler.h"
#include "gannet/train/evaluate.h"
#include "gannet/train/gpt_model.h"
#include "gannet/train/prepared_token_files.h"

namespace gannet::train {

namespace {

class NmLmTask : public TrainTask {
 public:
  explicit NmLmTask(const TrainConfig& cfg);

  CheckpointModel& model() override { return model_; }
  std::unique_ptr<CheckpointModel> make_whole_model() const override { return std::make_unique<GptModel>(cfg_.model); }
  dist::BucketPlan buckets() const override {
    return dist::transformer_buckets(model_.parameters(), cfg_.model.n_layer);
  }
  std::vector<const dist::ParameterPlacement*> split(dist::ProcessGroups&) override { return {}; }
  double whole_parameter_count() const override { return (double)nn::count_elements(model_.parameters()); }
  std::vector<std::pair<std::string, Tensor>> state_tensors() override { return student_.state_tensors(); }
  void start_at(int64_t step) override { next_step_ = step; }

  Rng& data_rng() override { return sampler_.rng(); }
  void draw(int64_t, bool mine) override { sampler_.next(mine ? tokens_ : other_tokens_, mine ? targets_ : other_targets_); }
  MicroLoss forward(const MicroBatch& batch) override;
  int64_t micro_tokens(int64_t) const override { return cfg_.micro_batch * cfg_.seq_len; }
  int64_t micro_layer_tokens(int64_t s) const override { return micro_tokens(s) * cfg_.model.n_layer; }
  void describe_step(int64_t, nlohmann::json& line) override {
    line["kd_logits"] = kd_;
    line["admm_penalty"] = student_.penalty_value();
    line["nm_distance"] = student_.distance_from_pattern();
  }

  Figures validate(int64_t batches) override;
  std::vector<std::string> validation_keys() const override { return {"val_loss", "val_ppl"}; }
  std::string describe_validation(int64_t step, const Figures& f) const override {
    return str("step ", step, ": student val loss ", fixed(f.values[0], 4), ", perplexity ", fixed(f.values[1], 1),
               " (simulated)");
  }
  std::string describe_data() const override {
    return str("data ", cfg_.data_dir, " (", files_.train.size(), " train tokens)");
  }
  std::string describe_options() const override;

 private:
  const TrainConfig& cfg_;
  PreparedTokenFiles files_;
  models::Gpt teacher_;
  GptModel model_;
  compress::NmStudent student_;
  data::WindowSampler sampler_;
  Tensor tokens_, targets_, other_tokens_, other_targets_;
  int64_t next_step_ = 0;
  double kd_ = 0;
};

NmLmTask::NmLmTask(const TrainConfig& cfg)
    : cfg_(cfg),
      files_(open_prepared_token_files(cfg.data_dir, cfg.model.vocab_size)),
      teacher_(cfg.model),
      model_(cfg.model),
      student_(cfg.nxm, model_.gpt.trunk()),
      sampler_(files_.train, cfg.seq_len, cfg.seed + 1) {
  io::load_checkpoint(cfg.teacher_checkpoint, teacher_, nullptr, nullptr);
  const nn::ParameterList& from = teacher_.parameters();
  const nn::ParameterList& to = model_.parameters();
  for (size_t i = 0; i < from.size(); ++i) to[i].var.value().copy_from(from[i].var.value());
  if (!cfg.init_checkpoint.empty()) io::load_checkpoint(cfg.init_checkpoint, model_.gpt, nullptr, nullptr);
  for (Tensor* t : {&tokens_, &targets_, &other_tokens_, &other_targets_})
    *t = Tensor::empty({cfg.micro_batch, cfg.seq_len}, DType::i32);
}

MicroLoss NmLmTask::forward(const MicroBatch& batch) {
  autograd::Var teacher;
  {
    autograd::NoGrad no_grad;
    teacher = teacher_.logits(tokens_);
  }
  student_.prepare(batch.step);
  next_step_ = batch.step + 1;
  const autograd::Var logits = compress::gpt_student_logits(model_.gpt, &student_, tokens_);
  autograd::Var loss = autograd::scale(
      autograd::soft_cross_entropy(logits, teacher.value(), cfg_.nxm.distill.temperature), cfg_.nxm.distill.logits);
  kd_ = loss.value().f32()[0];
  const autograd::Var p = student_.penalty();
  return {p.defined() ? autograd::add(loss, p) : loss, kd_};
}

Figures NmLmTask::validate(int64_t batches) {
  student_.prepare(next_step_);
  const EvalResult ev = evaluate(
      [&](const Tensor& tokens, const Tensor& targets) {
        const Tensor flat = targets.view({targets.numel()});
        return autograd::cross_entropy(compress::gpt_student_logits(model_.gpt, &student_, tokens), flat)
            .value()
            .f32()[0];
      },
      files_.val, cfg_.seq_len, cfg_.micro_batch, batches);
  return {validation_keys(), {ev.loss, ev.perplexity}};
}

std::string NmLmTask::describe_options() const {
  std::map<std::string, int> counts;
  for (int64_t l = 0; l < cfg_.model.n_layer; ++l)
    for (const compress::NmProductForm& f : student_.forms(l)) ++counts[f.describe()];
  std::string s = str("gannet train: N:M student of the GPT ", cfg_.teacher_checkpoint, " (", cfg_.model.n_layer,
                      " layers): ", cfg_.nxm.describe(), "; distils the logits (T ", cfg_.nxm.distill.temperature,
                      ")\ngannet train: products:");
  for (const auto& [form, n] : counts) s += str(" ", n, " x ", form, ";");
  s.back() = '\n';
  return s;
}

}  // namespace

std::unique_ptr<TrainTask> make_nm_lm_task(const TrainConfig& config) { return std::make_unique<NmLmTask>(config); }

}  // namespace gannet::train
