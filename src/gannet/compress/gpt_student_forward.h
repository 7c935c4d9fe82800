// The GPT's forward pass as a compressed student trains it (NxMiFormer on the language model):
// every block product's weight in the student's form (compress/student_form.h) and its input
// quantized to int8 per token, with straight-through gradients; the embeddings, LayerNorms and
// the tied LM head in f32. Without a form it is the plain forward, equal to models::Gpt::logits.
#pragma once
#include "gannet/compress/student_form.h"
#include "gannet/models/gpt.h"

namespace gannet::compress {

// Logits [B*T, vocab] for tokens [B, T] i32 (a dense GPT: MoE blocks are refused).
autograd::Var gpt_student_logits(const models::Gpt& model, const StudentForm* form, const Tensor& tokens);

}  // namespace gannet::compress
