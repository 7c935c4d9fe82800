// The pre-softmax attention scores of the bidirectional encoder as a differentiable op, for
// distilling a teacher's attention (TinyBERT, XTC: MSE between student and teacher scores).
#pragma once
#include <cstdint>

#include "gannet/autograd/variable.h"

namespace gannet::autograd {

// qkv [B*T, 3C] laid out as autograd::attention takes it (q, k, v column blocks; head h uses
// columns h*D .. (h+1)*D of each, D = C / n_head)  ->  scores [B * n_head * T, T], row
// (b * n_head + h) * T + i, column j:
//   score[b, h, i, j] = q_i . k_j / sqrt(D)   where key j is real (key_mask[b, j] != 0),
//                       exactly 0             where key j is padding (TinyBERT's convention: the
//                                             masked entries drop out of an MSE against a teacher
//                                             masked the same way).
// Padding query rows i are kept (their scores against real keys are computed as for any row).
// key_mask: u8 [B, T], or undefined for all keys real. The gradient goes into qkv's q and k
// columns only, added to whatever gradient qkv has (the attention op's included, in either order).
Var attention_scores(const Var& qkv, int64_t B, int64_t T, int64_t n_head, const Tensor& key_mask = Tensor());

// Checks the arguments of attention and attention_scores (qkv f32 [B*T, 3C], C split into n_head
// heads, key_mask undefined or u8 [B, T]); throws one line naming `op`. Returns C.
int64_t check_attention_args(const Tensor& qkv, int64_t B, int64_t T, int64_t n_head, const Tensor& key_mask,
                             const char* op);

}  // namespace gannet::autograd
