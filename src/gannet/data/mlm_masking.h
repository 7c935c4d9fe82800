// BERT's masked-language-model corruption of token windows (Devlin et al. 2019, as Google's
// create_pretraining_data.py does it): per sequence, exactly max(1, round(mask_prob * n)) of its n
// eligible positions are chosen uniformly without replacement (round half up; none when n = 0);
// each chosen position becomes [MASK] with probability 0.8, a uniformly random ordinary id with
// probability 0.1 (possibly the original), and stays unchanged with probability 0.1. The targets
// hold the original id at chosen positions and -1 (the loss's ignore index) elsewhere.
//
// Eligible: the position is valid (validity mask 1, or no mask given) and its id is ordinary,
// i.e. not one of the special ids [0, num_special); so padding and document separators (eos) are
// never chosen, and a random replacement is never a special id.
//
// [MASK]: the SentencePiece vocabulary of `gannet data prepare` (data/tokenizer.h) has no mask
// piece, so [MASK] reuses an unused control id instead of growing the vocabulary: id 1, the <s>
// (bos) piece, which the prepared token files never hold (each document is followed by eos only;
// nothing is prepended). The encoder's embedding therefore keeps vocab_size rows, the same table
// the tokenizer and the token files use.
//
// Deterministic: the draws come from the caller's Rng in a fixed order (sequence by sequence, per
// chosen position: one draw picking it, one picking its fate, one more for a random id), so a run
// that saves and restores the Rng's state masks a resumed step exactly as an uninterrupted one.
#pragma once
#include <cstdint>

#include "gannet/core/rng.h"
#include "gannet/core/tensor.h"

namespace gannet::data {

// <s> of the SentencePiece models that `gannet data prepare` trains (ids: 0 <unk>, 1 <s>, 2 </s>).
inline constexpr int32_t kMlmMaskId = 1;
// <unk>, <s>, </s>: the special ids of those models.
inline constexpr int32_t kSentencePieceSpecialIds = 3;

struct MlmMaskingOptions {
  int64_t vocab_size = 8192;
  float mask_prob = 0.15f;  // in (0, 1]: the fraction of each sequence's eligible positions chosen
  int32_t mask_id = kMlmMaskId;
  int32_t num_special = kSentencePieceSpecialIds;  // ids [0, num_special) are special; mask_id is one

  // Throws gannet::Error naming the bad field.
  void validate() const;
};

struct MlmBatch {
  Tensor inputs;       // i32 [B, T]: the corrupted tokens
  Tensor targets;      // i32 [B, T]: the original id at chosen positions, -1 elsewhere
  int64_t chosen = 0;  // number of positions with a target
};

// Corrupts tokens i32 [B, T] (every id in [0, vocab_size)). valid: u8 [B, T] (1 = real token), or
// an undefined Tensor when every position is real. Draws from rng.
MlmBatch mask_tokens(const Tensor& tokens, const Tensor& valid, const MlmMaskingOptions& options, Rng& rng);

// How many of a sequence's n eligible positions are chosen: max(1, round(mask_prob * n)), 0 for n = 0.
int64_t mlm_chosen_count(int64_t eligible, float mask_prob);

}  // namespace gannet::data
