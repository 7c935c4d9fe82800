#include "gannet/compress/encoder_lkd.h"

#include "gannet/autograd/distill_ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/compress/simulated_quant.h"
#include "gannet/compress/student_form.h"
#include "gannet/compress/xtc_forward.h"
#include "gannet/core/error.h"

namespace gannet::compress {

namespace {
// The packed forms as a student form: weights rounded as the packer rounds them, inputs as recorded.
class PackedForms : public StudentForm {
 public:
  explicit PackedForms(const std::vector<std::array<NmProductForm, 4>>& forms) : forms_(forms) {}
  autograd::Var weight(int64_t layer, int p, const autograd::Var& w) const override {
    return fake_quantize_weight(w, forms_[(size_t)layer][(size_t)p].quant);
  }
  io::ActivationQuant input(int64_t layer, int p) const override { return forms_[(size_t)layer][(size_t)p].input; }

 private:
  const std::vector<std::array<NmProductForm, 4>>& forms_;
};

nn::ParameterList block_parameters(const models::Encoder& m, int64_t layer) {
  const std::string prefix = str("h.", layer, ".");
  nn::ParameterList out;
  for (const nn::Parameter& p : m.parameters())
    if (p.name.compare(0, prefix.size(), prefix) == 0) out.push_back(p);
  return out;
}

void check_inputs(const models::Encoder& teacher, const models::Encoder& student,
                  const std::vector<std::array<NmProductForm, 4>>& forms, const std::vector<EncoderWindows>& batches,
                  const LkdOptions& o) {
  const int64_t L = teacher.config().n_layer;
  GANNET_CHECK(student.config() == teacher.config(), "encoder LKD: the student's shape differs from the teacher's");
  GANNET_CHECK((int64_t)forms.size() == L, "encoder LKD: ", forms.size(), " layers of forms for ", L, " blocks");
  for (const auto& layer : forms)
    for (const NmProductForm& f : layer)
      GANNET_CHECK(!f.pattern, "encoder LKD: sparse forms are not distilled (", f.describe(), ")");
  GANNET_CHECK(o.steps > 0 && o.lr > 0.f, "encoder LKD: needs steps > 0 and a positive rate");
  GANNET_CHECK(!batches.empty(), "encoder LKD: no calibration windows");
  for (const EncoderWindows& b : batches)
    GANNET_CHECK(b.tokens.ndim() == 2 && b.mask.ndim() == 2 && b.tokens.dim(0) == b.mask.dim(0) &&
                     b.tokens.dim(1) == b.mask.dim(1) && b.tokens.dim(1) <= teacher.config().n_ctx,
                 "encoder LKD: calibration batches need tokens and mask [B, T] with T at most n_ctx");
}
}  // namespace

std::vector<LkdLayerReport> distill_encoder_blocks(const models::Encoder& teacher, models::Encoder& student,
                                                   const std::vector<std::array<NmProductForm, 4>>& forms,
                                                   const std::vector<EncoderWindows>& batches, const LkdOptions& o,
                                                   const LkdProgress& progress) {
  check_inputs(teacher, student, forms, batches, o);
  const int64_t L = teacher.config().n_layer;
  const PackedForms form(forms);
  // The teacher's hidden states: [batch][l] is block l's input, [batch][l + 1] its output.
  std::vector<std::vector<Tensor>> hidden(batches.size());
  {
    autograd::NoGrad ng;
    for (size_t i = 0; i < batches.size(); ++i)
      for (const autograd::Var& h : traced_forward(teacher, nullptr, batches[i].tokens, batches[i].mask, {true}).hidden)
        hidden[i].push_back(h.value());
  }
  auto loss_of = [&](int64_t l, size_t i) {
    const EncoderWindows& b = batches[i];
    const autograd::Var y = student_block_forward(student.trunk().block(l), l, autograd::Var(hidden[i][(size_t)l]),
                                                  b.tokens.dim(0), b.tokens.dim(1), false, b.mask, &form, nullptr);
    return autograd::mse(y, hidden[i][(size_t)l + 1]);
  };
  auto mean_loss = [&](int64_t l) {
    autograd::NoGrad ng;
    double s = 0;
    for (size_t i = 0; i < batches.size(); ++i) s += loss_of(l, i).value().f32()[0];
    return s / (double)batches.size();
  };
  std::vector<LkdLayerReport> reports;
  for (int64_t l = 0; l < L; ++l) {
    const nn::ParameterList params = block_parameters(student, l);
    const double before = mean_loss(l);
    distill_stage(params, o, batches.size(), [&](size_t i) { return loss_of(l, i); }, progress, l * o.steps,
                  L * o.steps, str("block ", l, " mse"));
    const double after = mean_loss(l);
    if (after >= before) {  // distillation did not help on these windows: back to the teacher's weights
      const nn::ParameterList original = block_parameters(teacher, l);
      for (size_t j = 0; j < params.size(); ++j) params[j].var.value().copy_from(original[j].var.value());
    }
    reports.push_back({l, before, std::min(before, after), after >= before});
  }
  return reports;
}

}  // namespace gannet::compress
