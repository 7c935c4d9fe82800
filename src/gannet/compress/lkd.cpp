#include "gannet/compress/lkd.h"

#include <cmath>

#include "gannet/autograd/distill_ops.h"
#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/compress/layerwise_gpt.h"
#include "gannet/compress/simulated_quant.h"
#include "gannet/optim/adamw.h"
#include "gannet/optim/schedule.h"

namespace gannet::compress {

namespace {

using autograd::kl_divergence;
using autograd::mse;

int64_t rows_of(const Tensor& batch) { return batch.dim(0); }
int64_t cols_of(const Tensor& batch) { return batch.dim(1); }

// The block's quantization: the scheme's weight formats, the activations as the model records them.
BlockQuant block_quant(const QuantScheme& scheme, const io::GptWeights& quantized, int64_t l) {
  BlockQuant q = recorded_block_quant(quantized, l);
  for (size_t i = 0; i < kBlockProducts.size(); ++i)
    q.weight[i] = scheme.for_layer_weight(str("h.", l, ".", kBlockProducts[i], ".weight")).weight;
  return q;
}

float max_abs(const Tensor& t) {
  float m = 0.f;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::fabs(t.f32()[i]));
  return m;
}
}  // namespace

std::map<std::string, float> calibrate_activations(const io::GptWeights& model, const std::vector<Tensor>& batches) {
  check_calibration_batches(batches, model.config);
  autograd::NoGrad ng;
  LayerwiseGpt m(model);
  std::map<std::string, float> out;
  for (const Tensor& tokens : batches) {
    const int64_t B = rows_of(tokens), T = cols_of(tokens);
    Var x = m.embed(tokens);
    for (int64_t l = 0; l < model.config.n_layer; ++l) {
      const auto inputs = block_product_inputs(m.block(l), x, B, T);
      for (size_t i = 0; i < kBlockProducts.size(); ++i) {
        float& v = out[str("h.", l, ".", kBlockProducts[i], ".weight")];
        v = std::max(v, max_abs(inputs[i]));
      }
      x = m.block(l).forward(x, B, T, true, Tensor());
    }
  }
  return out;
}

void distill_stage(const nn::ParameterList& params, const LkdOptions& o, size_t batches,
                   const std::function<Var(size_t)>& loss_of, const LkdProgress& progress, int64_t first_step,
                   int64_t total, const std::string& label) {
  optim::AdamWOptions ao;
  ao.lr = o.lr;
  ao.weight_decay = 0.f;
  optim::AdamW opt(params, ao);
  const optim::CosineSchedule lr{o.lr, 0.f, 0, o.steps};
  double running = 0;
  for (int64_t s = 0; s < o.steps; ++s) {
    nn::zero_grad(params);
    Var loss = loss_of((size_t)(s % (int64_t)batches));
    autograd::tape().backward(loss);
    opt.step(lr.at(s));
    running = s == 0 ? loss.value().f32()[0] : 0.9 * running + 0.1 * loss.value().f32()[0];
    if (progress) progress(first_step + s + 1, total, str(label, " ", running));
  }
}

namespace {
// The LM head's stage of LKD: returns the distilled f32 head weight [V, C].
Tensor distill_head(const LayerwiseGpt& teacher, const WeightQuantSpec& spec, const std::vector<Tensor>& hidden,
                    const LkdOptions& o, QuantizeResult& r, const LkdProgress& progress, int64_t total) {
  const int64_t L = teacher.config().n_layer;
  std::vector<Tensor> normed;
  {
    autograd::NoGrad ng;
    for (const Tensor& h : hidden) normed.push_back(teacher.final_norm(Var(h)).value());
  }
  Var w(teacher.head().value().clone(), /*requires_grad=*/true);
  auto teacher_logits = [&](size_t i) {
    autograd::NoGrad ng;
    return autograd::linear(Var(normed[i]), teacher.head(), Var()).value();
  };
  auto student_loss = [&](size_t i) {
    return kl_divergence(autograd::linear(Var(normed[i]), fake_quantize_weight(w, spec), Var()), teacher_logits(i));
  };
  auto total_loss = [&]() {
    autograd::NoGrad ng;
    double s = 0;
    for (size_t i = 0; i < normed.size(); ++i) s += student_loss(i).value().f32()[0];
    return s / (double)normed.size();
  };
  const double before = total_loss();
  distill_stage({{"lm_head", w, false}}, o, normed.size(), student_loss, progress, L * o.steps, total, "lm head kl");
  const double after = total_loss();
  if (after >= before) {  // distillation did not help on this data: keep plain rounding
    r.layers.push_back({-1, before, before, true});
    return teacher.head().value();
  }
  r.layers.push_back({-1, before, after, false});
  return w.value();
}
}  // namespace

QuantizeResult quantize_with_lkd(const io::GptWeights& fp, const QuantScheme& scheme, const std::vector<Tensor>& batches,
                                 const LkdOptions& o, const std::function<void(int64_t, int64_t, const std::string&)>& progress) {
  check_quantizable(fp.config, o.steps > 0, scheme.static_activations);
  GANNET_CHECK(o.steps >= 0, "LKD: steps must be >= 0, got ", o.steps);
  GANNET_CHECK(o.lr > 0.f && std::isfinite(o.lr), "LKD: learning rate must be positive, got ", o.lr);
  QuantizeResult r;
  const bool need_data = scheme.static_activations || o.steps > 0;
  if (need_data) check_calibration_batches(batches, fp.config);
  if (scheme.static_activations) r.activation_max_abs = calibrate_activations(fp, batches);
  // Plain rounding first: it fixes the activation quantization every block's student sees.
  r.model = quantize_model(fp, scheme, r.activation_max_abs);
  if (o.steps == 0) return r;

  const int64_t L = fp.config.n_layer;
  LayerwiseGpt teacher(fp), student(fp);
  // The teacher's hidden state at the current block's input, per batch.
  std::vector<Tensor> hidden;
  {
    autograd::NoGrad ng;
    for (const Tensor& b : batches) hidden.push_back(teacher.embed(b).value());
  }
  const int64_t total = (L + (scheme.lm_head ? 1 : 0)) * o.steps;
  for (int64_t l = 0; l < L; ++l) {
    const BlockQuant q = block_quant(scheme, r.model, l);
    std::vector<Tensor> target;
    double before = 0, after = 0;
    {
      autograd::NoGrad ng;
      for (size_t i = 0; i < batches.size(); ++i) {
        const int64_t B = rows_of(batches[i]), T = cols_of(batches[i]);
        target.push_back(teacher.block(l).forward(Var(hidden[i]), B, T, true, Tensor()).value());
        before += mse(simulated_block_forward(student.block(l), q, Var(hidden[i]), B, T), target[i]).value().f32()[0];
      }
    }
    distill_stage(student.block_parameters(l), o, batches.size(), [&](size_t i) {
      return mse(simulated_block_forward(student.block(l), q, Var(hidden[i]), rows_of(batches[i]), cols_of(batches[i])),
                 target[i]);
    }, progress, l * o.steps, total, str("block ", l, " mse"));
    {
      autograd::NoGrad ng;
      for (size_t i = 0; i < batches.size(); ++i) {
        const int64_t B = rows_of(batches[i]), T = cols_of(batches[i]);
        after += mse(simulated_block_forward(student.block(l), q, Var(hidden[i]), B, T), target[i]).value().f32()[0];
      }
    }
    if (after >= before) {  // distillation did not help on this data: keep plain rounding
      for (const nn::Parameter& p : student.block_parameters(l))
        p.var.value().copy_from(fp.dense(p.name, p.var.shape()));
      after = before;
    }
    r.layers.push_back({l, before / (double)batches.size(), after / (double)batches.size(), after == before});
    hidden = std::move(target);
  }
  // The distilled weights, quantized for real (same scheme, same activation scales).
  io::GptWeights distilled = fp;
  for (int64_t l = 0; l < L; ++l)
    for (const nn::Parameter& p : student.block_parameters(l)) distilled.tensors[p.name] = p.var.value();
  if (scheme.lm_head) {
    const bool tied = r.model.quantized.count("lm_head.weight") == 0;
    const Tensor head = distill_head(teacher, *scheme.lm_head, hidden, o, r, progress, total);
    distilled.tensors[tied ? "wte.weight" : "lm_head.weight"] = head;
  }
  r.model = quantize_model(distilled, scheme, r.activation_max_abs);
  return r;
}

}  // namespace gannet::compress
