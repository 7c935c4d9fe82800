// Vocabulary parallelism (Megatron-LM) over a tensor-parallel group of t ranks: rank r holds rows
// [r V/t, (r+1) V/t) of the token table wte [V, C], which is also the tied LM head. The embedding,
// the LM head's logits and the cross-entropy run on those rows only; no rank holds [N, V] of
// anything (except gather_vocab, for callers that ask for whole logits).
#pragma once
#include "gannet/autograd/variable.h"
#include "gannet/dist/communicator.h"

namespace gannet::dist {

// Token + position embedding [B*T, C] of tokens [B, T] (i32, ids in [0, V)) from this rank's rows
// wte_local [V/t, C] and the whole position table wpe (may be undefined): each rank looks up the
// tokens among its rows, adding their positions' rows, and writes zeros for the others; an
// all-reduce over the group sums the parts. Backward needs no communication: wte's gradient lands
// in the local rows, and wpe's, summed over every token, is the same on every rank.
autograd::Var vocab_parallel_embedding(Communicator& group, const Tensor& tokens, const autograd::Var& wte_local,
                                       const autograd::Var& wpe);

// Mean cross-entropy of the whole logits [N, V] against targets [N] (i32 ids in [0, V); -1 =
// ignore), computed from this rank's columns local_logits [N, V/t]: the same value and gradient
// as autograd::cross_entropy of the whole logits. Forward: an all-reduce max of the N row maxima,
// then one all-reduce sum of 2N floats (the rows' sums of exponentials and target logits); the
// backward is local. Like autograd::cross_entropy it overwrites the local logits' values with
// their gradient (when one is needed): this must be their last use.
autograd::Var vocab_parallel_cross_entropy(Communicator& group, const autograd::Var& local_logits,
                                           const Tensor& targets);

// The whole logits [N, V] from every rank's columns [N, V/t] (an all-gather); backward: this
// rank's columns of the gradient.
autograd::Var gather_vocab(Communicator& group, const autograd::Var& local_logits);

}  // namespace gannet::dist
