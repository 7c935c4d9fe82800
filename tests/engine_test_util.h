// Helpers for tests of the inference engine (dense, MoE, quantized): small random GPTs and their
// weights, random token ids, the training model's logits as the reference, closeness checks,
// prefill-then-decode and batched-decode runs, scheme options, and rewritten safetensors files.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "gannet/autograd/tape.h"
#include "gannet/compress/quant_scheme.h"
#include "gannet/core/dtype.h"
#include "gannet/core/rng.h"
#include "gannet/infer/engine.h"
#include "gannet/io/safetensors.h"
#include "gannet/models/gpt.h"

namespace gannet::testing {

// A small dense GPT config (MoE fields left at their defaults).
inline models::GptConfig small_config(int64_t vocab, int64_t n_ctx, int64_t n_head, int64_t n_embd,
                                      int64_t n_layer = 2) {
  models::GptConfig c;
  c.vocab_size = vocab;
  c.n_ctx = n_ctx;
  c.n_layer = n_layer;
  c.n_head = n_head;
  c.n_embd = n_embd;
  return c;
}

// A model initialised with `seed`, then each parameter for which amount(name) is not 0 perturbed by
// amount * N(0, 1) per element (in parameter order, from Rng(seed + 100)).
inline models::Gpt perturbed_model(const models::GptConfig& c, uint64_t seed,
                                   const std::function<float(const std::string&)>& amount) {
  models::Gpt m(c);
  m.init(seed);
  Rng rng(seed + 100);
  for (const auto& p : m.parameters()) {
    const float a = amount(p.name);
    if (a == 0.f) continue;
    float* v = p.var.value().f32();
    for (int64_t i = 0; i < p.var.value().numel(); ++i) v[i] += a * rng.normal();
  }
  return m;
}

// The training model's parameters as engine weights (sharing their storage).
inline io::GptWeights weights_of(const models::Gpt& m) {
  io::GptWeights w;
  w.config = m.config();
  for (const auto& p : m.parameters()) w.tensors[p.name] = p.var.value();
  return w;
}

inline std::vector<int32_t> random_ids(int64_t n, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids(n);
  for (auto& t : ids) t = (int32_t)rng.below(vocab);
  return ids;
}

// One sequence as a [1, n] i32 tensor.
inline Tensor token_tensor(const std::vector<int32_t>& ids) {
  Tensor t = Tensor::empty({1, (int64_t)ids.size()}, DType::i32);
  for (size_t i = 0; i < ids.size(); ++i) t.data<int32_t>()[i] = ids[i];
  return t;
}

// Logits of the training model for one sequence: [n, V] (grad mode off: no noise, eval capacity).
inline std::vector<float> reference_logits(const models::Gpt& m, const std::vector<int32_t>& ids) {
  autograd::NoGrad ng;
  Tensor l = m.logits(token_tensor(ids)).value();
  return std::vector<float>(l.f32(), l.f32() + l.numel());
}

inline void expect_near(const float* got, const float* want, int64_t n, float tol, const std::string& what) {
  for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(got[i], want[i], tol * (1.f + std::fabs(want[i]))) << what << " at " << i;
}

// All logits of e (sequence 0, reset) for the n tokens random_ids(n, vocab, n) against the training
// model m's, within tol (expect_near).
inline void expect_forward_all_near_reference(infer::Engine& e, const models::Gpt& m, int64_t n, int64_t vocab,
                                              float tol) {
  auto ids = random_ids(n, vocab, n);
  auto want = reference_logits(m, ids);
  std::vector<float> got(n * vocab);
  e.reset(0);
  e.forward_all({0, ids}, got.data());
  expect_near(got.data(), want.data(), n * vocab, tol, "length " + std::to_string(n));
}

// The largest |got - want| over the largest |want|.
inline double max_rel_error(const std::vector<float>& got, const std::vector<float>& want) {
  double worst = 0, scale = 0;
  for (float v : want) scale = std::max(scale, (double)std::fabs(v));
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, (double)std::fabs(got[i] - want[i]));
  return worst / scale;
}

// The root mean square of got - want over that of want.
inline double rms_rel_error(const std::vector<float>& got, const std::vector<float>& want) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    err += (got[i] - want[i]) * (got[i] - want[i]);
    ref += want[i] * want[i];
  }
  return std::sqrt(err / ref);
}

inline compress::SchemeOptions options(int64_t group = 64, bool symmetric = true) {
  compress::SchemeOptions o;
  o.group = group;
  o.symmetric = symmetric;
  return o;
}

// Sequence 0 of e, reset, given ids[0, prefix) as one chunk and then the rest one token at a time:
// the logits after each call, [ids.size() - prefix + 1][vocab], the first for position prefix - 1.
inline std::vector<std::vector<float>> prefill_then_decode(infer::Engine& e, const std::vector<int32_t>& ids,
                                                           int64_t prefix, int64_t vocab) {
  std::vector<std::vector<float>> rows;
  e.reset(0);
  const std::span<const int32_t> all(ids);
  infer::Chunk first{0, all.subspan(0, prefix)};
  rows.emplace_back(vocab);
  e.forward(std::span<const infer::Chunk>(&first, 1), rows.back().data());
  for (int64_t i = prefix; i < (int64_t)ids.size(); ++i) {
    infer::Chunk step{0, all.subspan(i, 1)};
    rows.emplace_back(vocab);
    e.forward(std::span<const infer::Chunk>(&step, 1), rows.back().data());
  }
  return rows;
}

// prefill_then_decode against the full forward's logits want [ids.size(), vocab], each row within tol
// (expect_near).
inline void expect_prefill_then_decode_near(infer::Engine& e, const std::vector<int32_t>& ids,
                                            const std::vector<float>& want, int64_t prefix, int64_t vocab,
                                            float tol) {
  const auto rows = prefill_then_decode(e, ids, prefix, vocab);
  expect_near(rows[0].data(), want.data() + (prefix - 1) * vocab, vocab, tol, "prefill");
  for (int64_t i = prefix; i < (int64_t)ids.size(); ++i)
    expect_near(rows[i - prefix + 1].data(), want.data() + i * vocab, vocab, tol, "decode " + std::to_string(i));
}

// Batched decode against single decode, bitwise. Two engines on w with S sequences, sequence s's
// prompt random_ids(3 + 4 s, vocab, 10 + s) prefilled alone in both; then for each step < steps:
// the next token (of random_ids(steps, vocab, 20 + seq)) of each seq in batch(step), in that order,
// in one call of the batched engine and one call each of the single one, the logits bitwise equal;
// then the token of each seq in catch_up(step) (those that sat out) alone in both.
inline void expect_batched_decode_equals_single_decode_bitwise(
    const io::GptWeights& w, int64_t S, int64_t steps, int64_t vocab,
    const std::function<std::vector<int64_t>(int64_t step)>& batch,
    const std::function<std::vector<int64_t>(int64_t step)>& catch_up) {
  std::vector<std::vector<int32_t>> prompts, conts;
  for (int64_t s = 0; s < S; ++s) {
    prompts.push_back(random_ids(3 + 4 * s, vocab, 10 + s));
    conts.push_back(random_ids(steps, vocab, 20 + s));
  }
  infer::EngineOptions o;
  o.max_sequences = S;
  infer::Engine batched(w, o), single(w, o);
  std::vector<float> logits(S * vocab), one(vocab);
  for (int64_t s = 0; s < S; ++s) {
    infer::Chunk c{s, prompts[s]};
    batched.forward(std::span<const infer::Chunk>(&c, 1), logits.data());
    single.forward(std::span<const infer::Chunk>(&c, 1), one.data());
  }
  for (int64_t step = 0; step < steps; ++step) {
    std::vector<infer::Chunk> cs;
    for (int64_t seq : batch(step)) cs.push_back({seq, std::span<const int32_t>(conts[seq]).subspan(step, 1)});
    batched.forward(cs, logits.data());
    for (size_t i = 0; i < cs.size(); ++i) {
      single.forward(std::span<const infer::Chunk>(&cs[i], 1), one.data());
      for (int64_t v = 0; v < vocab; ++v)
        ASSERT_EQ(logits[i * vocab + v], one[v]) << "seq " << cs[i].seq << " step " << step;
    }
    for (int64_t seq : catch_up(step)) {
      infer::Chunk c{seq, std::span<const int32_t>(conts[seq]).subspan(step, 1)};
      batched.forward(std::span<const infer::Chunk>(&c, 1), one.data());
      single.forward(std::span<const infer::Chunk>(&c, 1), one.data());
    }
  }
}

// Three prompts prefilled on a 3-sequence engine, then one decode step for all three together:
// each sequence's logits bitwise equal to the same prompt and token run alone (reset, sequence 0)
// on another engine.
inline void expect_batched_step_equals_single_runs_bitwise(const io::GptWeights& q, int64_t vocab) {
  infer::EngineOptions o;
  o.max_sequences = 3;
  infer::Engine batched(q, o), single(q, o);
  std::vector<std::vector<int32_t>> prompts = {random_ids(5, vocab, 1), random_ids(9, vocab, 2),
                                               random_ids(2, vocab, 3)};
  std::vector<float> logits(3 * vocab), one(vocab);
  for (int64_t s = 0; s < 3; ++s) {
    infer::Chunk ch{s, prompts[s]};
    batched.forward(std::span<const infer::Chunk>(&ch, 1), logits.data());
  }
  std::vector<int32_t> next = {7, 11, 13};
  std::vector<infer::Chunk> cs;
  for (int64_t s = 0; s < 3; ++s) cs.push_back({s, std::span<const int32_t>(&next[s], 1)});
  batched.forward(cs, logits.data());
  for (int64_t s = 0; s < 3; ++s) {
    single.reset(0);
    infer::Chunk p{0, prompts[s]};
    single.forward(std::span<const infer::Chunk>(&p, 1), one.data());
    infer::Chunk d{0, std::span<const int32_t>(&next[s], 1)};
    single.forward(std::span<const infer::Chunk>(&d, 1), one.data());
    for (int64_t v = 0; v < vocab; ++v) ASSERT_EQ(one[v], logits[s * vocab + v]) << "sequence " << s;
  }
}

// A copy of the safetensors file `from` at path `to`, its tensors ([name, tensor] pairs) and
// metadata passed through change_tensors and change_meta first; returns `to`.
template <class ChangeTensors, class ChangeMeta>
std::string rewrite_safetensors(const io::SafeTensors& from, const std::string& to, ChangeTensors change_tensors,
                                ChangeMeta change_meta) {
  std::vector<std::pair<std::string, Tensor>> ts;
  for (const std::string& n : from.names()) ts.emplace_back(n, from.get(n));
  std::map<std::string, std::string> meta = from.metadata();
  change_tensors(ts);
  change_meta(meta);
  io::save_safetensors(to, ts, meta);
  return to;
}

}  // namespace gannet::testing
