// The classifier encoder's forward pass as a compressed student trains it: every block product
// with its weight in the student's form (compress/student_form.h: XTC's binary or ternary weights,
// NxMiFormer's N:M sparse int8/int4 ones) and its input quantized to int8 per token, simulated in
// f32 with straight-through gradients (compress/simulated_quant.h), and the embedding tables as
// the form says. The packed engine (infer/encoder_engine.h) computes the same products with
// integer kernels.
//
// It records what distillation compares: the hidden states (the embedding output, then each
// block's output) and each block's attention scores. Without a config it is the plain f32 forward
// (the teacher's), equal to models::Encoder::logits.
#pragma once
#include <vector>

#include "gannet/compress/student_form.h"
#include "gannet/compress/xtc_config.h"
#include "gannet/models/encoder.h"

namespace gannet::compress {

using autograd::Var;

struct EncoderTrace {
  Var logits;                // [B, num_classes]
  std::vector<Var> hidden;   // [n_layer + 1] of [B*T, C] (kept when asked)
  std::vector<Var> scores;   // [n_layer] of [B * n_head * T, T] (kept when asked)
};

struct TraceRequest {
  bool hidden = false;
  bool scores = false;
};

// tokens [B, T] i32, mask [B, T] u8. form: nullptr for the f32 forward.
EncoderTrace traced_forward(const models::Encoder& model, const StudentForm* form, const Tensor& tokens,
                            const Tensor& mask, TraceRequest want);

// One pre-LN block as a student runs it (form nullptr: f32), x [B*T, C]; bidirectional over the
// mask's real tokens (the encoder) or causal (the GPT, mask undefined). With `scores` (the encoder
// only), its pre-softmax attention scores are appended.
Var student_block_forward(const nn::Block& b, int64_t layer, const Var& x, int64_t B, int64_t T, bool causal,
                          const Tensor& mask, const StudentForm* form, std::vector<Var>* scores);

// XTC's form: every block product's weight binarized or ternarized as `config` says, the
// embedding tables too (one scale per row) when it names them (compress/low_bit_fake_quant.h).
class XtcForm : public StudentForm {
 public:
  explicit XtcForm(const XtcConfig& config) : config_(config) {}
  Var weight(int64_t layer, int product, const Var& w) const override;
  Var embedding_table(const Var& table) const override;

 private:
  const XtcConfig& config_;
};

}  // namespace gannet::compress
