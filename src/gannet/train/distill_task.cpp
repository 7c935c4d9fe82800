#include "gannet/train/distill_task.h"

#include "gannet/autograd/distill_ops.h"
#include "gannet/autograd/ops.h"
#include "gannet/compress/layer_reduction.h"
#include "gannet/train/evaluate_encoder.h"

namespace gannet::train {

namespace {
using autograd::Var;

models::Encoder load_teacher(const TrainConfig& cfg) {
  models::Encoder teacher(cfg.encoder);
  io::load_encoder_checkpoint(cfg.teacher_checkpoint, teacher, nullptr, nullptr);
  return teacher;
}
}  // namespace

DistillTask::DistillTask(const TrainConfig& cfg, const compress::DistillWeights& distill,
                         std::vector<int64_t> layer_map)
    : EncoderTask(compress::student_config(cfg.encoder, layer_map)),
      cfg_(cfg),
      distill_(distill),
      teacher_(load_teacher(cfg)),
      layer_map_(std::move(layer_map)),
      data_(cfg, cfg.encoder, cfg.seed + 1) {
  GANNET_CHECK(data_.train().num_classes() == cfg.encoder.num_classes, cfg.classify_set, " has ",
               data_.train().num_classes(), " classes, the teacher ", cfg.encoder.num_classes);
}

void DistillTask::init_student(const std::vector<std::string>& copied) {
  model_.encoder.init(cfg_.seed);
  if (!cfg_.init_checkpoint.empty()) {
    io::load_encoder_checkpoint(cfg_.init_checkpoint, model_.encoder, nullptr, nullptr);
    return;
  }
  compress::init_student_from_teacher(teacher_, model_.encoder, layer_map_, copied);
}

Var DistillTask::distillation_loss(const compress::EncoderTrace& s, const compress::EncoderTrace& t, float wl,
                                   float wh, float wa) {
  std::vector<Var> terms;
  terms_ = {};
  if (wl > 0) {
    Var l = autograd::soft_cross_entropy(s.logits, t.logits.value(), distill_.temperature);
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

MicroLoss DistillTask::forward(const MicroBatch& batch) {
  const compress::DistillWeights& w = distill_;
  const bool first = w.two_stage && batch.step < w.first_steps, second = w.two_stage && !first;
  const float wl = first ? 0.f : w.logits, wh = second ? 0.f : w.hidden, wa = second ? 0.f : w.attention;
  const compress::TraceRequest want{wh > 0, wa > 0};
  compress::EncoderTrace teacher;
  {
    autograd::NoGrad no_grad;
    teacher = compress::traced_forward(teacher_, nullptr, data_.tokens(), data_.mask(), want);
  }
  const compress::StudentForm& form = form_at(batch.step);
  next_step_ = batch.step + 1;
  const compress::EncoderTrace student =
      compress::traced_forward(model_.encoder, &form, data_.tokens(), data_.mask(), want);
  Var loss = distillation_loss(student, teacher, wl, wh, wa);
  const double reported = loss.value().f32()[0];
  Var extra = form_objective();
  return {extra.defined() ? autograd::add(loss, extra) : loss, reported};
}

void DistillTask::describe_step(int64_t, nlohmann::json& line) {
  line["kd_logits"] = terms_.logits;
  line["kd_hidden"] = terms_.hidden;
  line["kd_attention"] = terms_.attention;
}

Figures DistillTask::validate(int64_t batches) {
  const compress::StudentForm& form = form_at(next_step_);
  auto student = [&](const Tensor& tokens, const Tensor& mask) {
    return compress::traced_forward(model_.encoder, &form, tokens, mask, {}).logits.value();
  };
  const ClassifierEval e = evaluate_classifier(student, data_.val(), cfg_.micro_batch, batches * cfg_.micro_batch);
  return {validation_keys(), {e.loss, e.confusion.accuracy(), e.confusion.macro_f1()}};
}

std::vector<std::string> DistillTask::validation_keys() const { return classifier_validation_keys(); }

std::string DistillTask::describe_validation(int64_t step, const Figures& f) const {
  return describe_classifier_validation(step, f.values);
}

std::string DistillTask::describe_data() const { return data_.describe(cfg_.classify_set); }

}  // namespace gannet::train
