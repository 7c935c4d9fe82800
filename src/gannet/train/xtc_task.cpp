#include "gannet/train/xtc_task.h"

#include "gannet/autograd/distill_ops.h"
#include "gannet/autograd/ops.h"
#include "gannet/compress/layer_reduction.h"
#include "gannet/compress/xtc_forward.h"
#include "gannet/train/classification_batches.h"
#include "gannet/train/encoder_task.h"
#include "gannet/train/evaluate_encoder.h"

namespace gannet::train {

namespace {

using autograd::Var;

// The terms of the distillation loss of one micro-batch (0 when a term is off).
struct DistillTerms {
  double logits = 0, hidden = 0, attention = 0;
};

models::Encoder load_teacher(const TrainConfig& cfg) {
  models::Encoder teacher(cfg.encoder);
  io::load_encoder_checkpoint(cfg.teacher_checkpoint, teacher, nullptr, nullptr);
  return teacher;
}

class XtcTask : public EncoderTask {
 public:
  explicit XtcTask(const TrainConfig& cfg);

  Rng& data_rng() override { return data_.rng(); }
  void draw(int64_t, bool mine) override { data_.draw(mine); }
  MicroLoss forward(const MicroBatch& batch) override;
  int64_t micro_tokens(int64_t) const override { return cfg_.micro_batch * data_.train().window; }
  int64_t micro_layer_tokens(int64_t s) const override {
    return micro_tokens(s) * model_.encoder.config().n_layer;
  }
  void describe_step(int64_t, nlohmann::json& line) override {
    line["kd_logits"] = terms_.logits;
    line["kd_hidden"] = terms_.hidden;
    line["kd_attention"] = terms_.attention;
  }

  Figures validate(int64_t batches) override;
  std::vector<std::string> validation_keys() const override { return classifier_validation_keys(); }
  std::string describe_validation(int64_t step, const Figures& f) const override {
    return describe_classifier_validation(step, f.values);
  }
  std::string describe_data() const override { return data_.describe(cfg_.classify_set); }
  std::string describe_options() const override;

 private:
  Var distillation_loss(const compress::EncoderTrace& s, const compress::EncoderTrace& t, float wl, float wh, float wa);

  const TrainConfig& cfg_;
  models::Encoder teacher_;
  std::vector<int64_t> layer_map_;
  ClassificationBatches data_;
  DistillTerms terms_;
};

XtcTask::XtcTask(const TrainConfig& cfg)
    : EncoderTask(compress::student_config(cfg.encoder, compress::student_layer_map(cfg.xtc, cfg.encoder.n_layer))),
      cfg_(cfg),
      teacher_(load_teacher(cfg)),
      layer_map_(compress::student_layer_map(cfg.xtc, cfg.encoder.n_layer)),
      data_(cfg, cfg.encoder, cfg.seed + 1) {
  compress::check_product_coverage(cfg.xtc, (int64_t)layer_map_.size());
  GANNET_CHECK(data_.train().num_classes() == cfg.encoder.num_classes, cfg.classify_set, " has ",
               data_.train().num_classes(), " classes, the teacher ", cfg.encoder.num_classes);
  model_.encoder.init(cfg.seed);
  if (!cfg.init_checkpoint.empty()) {
    io::load_encoder_checkpoint(cfg.init_checkpoint, model_.encoder, nullptr, nullptr);
    return;
  }
  const std::vector<std::string> all = {"wte", "wpe", "ln_f", "classifier"};
  compress::init_student_from_teacher(teacher_, model_.encoder, layer_map_,
                                      cfg.xtc.layers.enabled ? cfg.xtc.layers.copied : all);
}

Var XtcTask::distillation_loss(const compress::EncoderTrace& s, const compress::EncoderTrace& t, float wl, float wh,
                               float wa) {
  std::vector<Var> terms;
  terms_ = {};
  if (wl > 0) {
    Var l = autograd::soft_cross_entropy(s.logits, t.logits.value(), cfg_.xtc.distill.temperature);
    terms_.logits = l.value().f32()[0];
    terms.push_back(autograd::scale(l, wl));
  }
  if (wh > 0) {  // the embedding output, then each block against its teacher block
    const float w = wh / (float)s.hidden.size();
    for (size_t j = 0; j < s.hidden.size(); ++j) {
      const size_t from = j == 0 ? 0 : (size_t)layer_map_[j - 1] + 1;
      Var l = autograd::mse(s.hidden[j], t.hidden[from].value());
      terms_.hidden += l.value().f32()[0] / (double)s.hidden.size();
      terms.push_back(autograd::scale(l, w));
    }
  }
  if (wa > 0) {
    const float w = wa / (float)s.scores.size();
    for (size_t j = 0; j < s.scores.size(); ++j) {
      Var l = autograd::mse(s.scores[j], t.scores[(size_t)layer_map_[j]].value());
      terms_.attention += l.value().f32()[0] / (double)s.scores.size();
      terms.push_back(autograd::scale(l, w));
    }
  }
  Var total = terms[0];
  for (size_t i = 1; i < terms.size(); ++i) total = autograd::add(total, terms[i]);
  return total;
}

MicroLoss XtcTask::forward(const MicroBatch& batch) {
  const compress::DistillWeights& w = cfg_.xtc.distill;
  const bool first = w.two_stage && batch.step < w.first_steps, second = w.two_stage && !first;
  const float wl = first ? 0.f : w.logits, wh = second ? 0.f : w.hidden, wa = second ? 0.f : w.attention;
  const compress::TraceRequest want{wh > 0, wa > 0};
  compress::EncoderTrace teacher;
  {
    autograd::NoGrad no_grad;
    teacher = compress::traced_forward(teacher_, nullptr, data_.tokens(), data_.mask(), want);
  }
  const compress::EncoderTrace student =
      compress::traced_forward(model_.encoder, &cfg_.xtc, data_.tokens(), data_.mask(), want);
  Var loss = distillation_loss(student, teacher, wl, wh, wa);
  return {loss, loss.value().f32()[0]};
}

Figures XtcTask::validate(int64_t batches) {
  auto student = [&](const Tensor& tokens, const Tensor& mask) {
    return compress::traced_forward(model_.encoder, &cfg_.xtc, tokens, mask, {}).logits.value();
  };
  const ClassifierEval e = evaluate_classifier(student, data_.val(), cfg_.micro_batch, batches * cfg_.micro_batch);
  return {validation_keys(), {e.loss, e.confusion.accuracy(), e.confusion.macro_f1()}};
}

std::string XtcTask::describe_options() const {
  std::string s = str("gannet train: XTC student of ", cfg_.teacher_checkpoint, " (", cfg_.encoder.n_layer,
                      " layers): ", cfg_.xtc.describe(), "\n");
  if (!cfg_.init_checkpoint.empty()) s += str("gannet train: the student starts from ", cfg_.init_checkpoint, "\n");
  return s;
}

}  // namespace

std::unique_ptr<TrainTask> make_xtc_task(const TrainConfig& config) { return std::make_unique<XtcTask>(config); }

}  // namespace gannet::train
