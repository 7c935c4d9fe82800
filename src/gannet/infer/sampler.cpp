#include "gannet/infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "gannet/core/error.h"

namespace gannet::infer {

void SamplingParams::validate() const {
  GANNET_CHECK(std::isfinite(temperature) && temperature >= 0.0f, "temperature must be >= 0, got ", temperature);
  GANNET_CHECK(top_k >= 0, "top_k must be >= 0 (0 = off), got ", top_k);
  GANNET_CHECK(std::isfinite(top_p) && top_p > 0.0f && top_p <= 1.0f, "top_p must be in (0, 1], got ", top_p);
  GANNET_CHECK(std::isfinite(repetition_penalty) && repetition_penalty > 0.0f,
               "repetition_penalty must be > 0 (1 = off), got ", repetition_penalty);
}

Sampler::Sampler(const SamplingParams& params, int64_t vocab_size, std::span<const int32_t> prompt)
    : params_(params), vocab_(vocab_size), rng_(params.seed) {
  params_.validate();
  GANNET_CHECK(vocab_size > 0, "sampler: vocabulary size must be positive, got ", vocab_size);
  if (params_.repetition_penalty != 1.0f) {
    seen_.assign((size_t)vocab_, 0);
    for (int32_t id : prompt) {
      GANNET_CHECK(id >= 0 && id < vocab_, "sampler: prompt token ", id, " is outside the vocabulary of ", vocab_);
      if (!seen_[id]) {
        seen_[id] = 1;
        seen_ids_.push_back(id);
      }
    }
  }
}

namespace {
// Likelier first; equal logits in id order, so the order is total and the result deterministic.
struct Likelier {
  const float* l;
  bool operator()(int32_t a, int32_t b) const { return l[a] > l[b] || (l[a] == l[b] && a < b); }
};
}  // namespace

int64_t Sampler::partition_top(int64_t n) {
  n = std::min(n, vocab_);
  const Likelier likelier{scratch_.data()};
  if (n >= vocab_) return n;
  if (n > 1024) {
    std::iota(order_.begin(), order_.end(), 0);
    std::nth_element(order_.begin(), order_.begin() + n, order_.end(), likelier);
    return n;
  }
  // Few of many: one pass with a heap of the n likeliest so far (least likely on top), where
  // almost every token is rejected by a single comparison.
  auto heap_end = order_.begin();
  for (int32_t id = 0; id < (int32_t)vocab_; ++id) {
    if (heap_end - order_.begin() < n) {
      *heap_end++ = id;
      std::push_heap(order_.begin(), heap_end, likelier);
    } else if (likelier(id, order_[0])) {
      std::pop_heap(order_.begin(), heap_end, likelier);
      *(heap_end - 1) = id;
      std::push_heap(order_.begin(), heap_end, likelier);
    }
  }
  return n;
}

int64_t Sampler::nucleus(int64_t n, double target) {
  // Quickselect on mass: partition around a pivot; if the likelier side already holds the
  // target, the nucleus ends inside it, else it is all in and the search continues beyond the
  // pivot. Expected O(n), where sorting would be O(n log n) (a flat distribution over 50k tokens
  // can need tens of thousands in its nucleus).
  const Likelier likelier{scratch_.data()};
  const float* w = weight_of_.data();
  int64_t lo = 0, hi = n;
  double acc = 0.0;  // mass of order_[0, lo), all in the nucleus; acc + mass[lo, hi) >= target
  while (hi - lo > 1) {
    int32_t a = order_[lo], b = order_[lo + (hi - lo) / 2], c = order_[hi - 1];
    int32_t pivot = likelier(a, b) ? (likelier(b, c) ? b : (likelier(a, c) ? c : a))
                                   : (likelier(a, c) ? a : (likelier(b, c) ? c : b));
    auto first = order_.begin();
    int64_t m = std::partition(first + lo, first + hi, [&](int32_t id) { return likelier(id, pivot); }) - first;
    double upper = 0.0;
    for (int64_t i = lo; i < m; ++i) upper += w[order_[i]];
    if (acc + upper >= target) {
      hi = m;
      continue;
    }
    std::iter_swap(first + m, std::find(first + m, first + hi, pivot));
    acc += upper + w[pivot];
    if (acc >= target) return m + 1;
    lo = m + 1;
  }
  return hi;
}

int32_t Sampler::sample(std::span<const float> logits) {
  GANNET_CHECK((int64_t)logits.size() == vocab_, "sampler: got ", logits.size(), " logits for a vocabulary of ",
               vocab_);
  scratch_.assign(logits.begin(), logits.end());
  for (int32_t id : seen_ids_) {
    float& v = scratch_[id];
    v = v > 0.0f ? v / params_.repetition_penalty : v * params_.repetition_penalty;
  }
  const float* l = scratch_.data();

  int32_t best = 0;
  for (int64_t i = 1; i < vocab_; ++i)
    if (l[i] > l[best]) best = (int32_t)i;
  GANNET_CHECK(std::isfinite(l[best]), "sampler: logits have no finite maximum");

  int32_t chosen = best;
  if (!params_.greedy()) {
    const float inv_t = 1.0f / params_.temperature;
    const float top = l[best];
    auto weight = [&](int32_t id) { return std::exp((l[id] - top) * inv_t); };
    const int64_t k = params_.top_k > 0 ? std::min(params_.top_k, vocab_) : vocab_;
    order_.resize((size_t)vocab_);

    // Candidates: order_[0, n), in no particular order, and their weights.
    int64_t n = vocab_;
    if (k < vocab_) {
      n = partition_top(k);
    } else {
      std::iota(order_.begin(), order_.end(), 0);
    }
    weight_of_.resize((size_t)vocab_);
    double total = 0.0;
    for (int64_t i = 0; i < n; ++i) total += weight_of_[order_[i]] = weight(order_[i]);
    if (params_.top_p < 1.0f) {
      // The nucleus is measured against the mass of the top-k (or of the whole vocabulary).
      n = nucleus(n, params_.top_p * total);
      total = 0.0;
      for (int64_t i = 0; i < n; ++i) total += weight_of_[order_[i]];
    }

    const double u = rng_.uniform_double() * total;
    double cum = 0.0;
    chosen = order_[0];
    for (int64_t i = 0; i < n; ++i) {
      const float wi = weight_of_[order_[i]];
      if (wi <= 0.0f) continue;
      chosen = order_[i];
      cum += wi;
      if (u < cum) break;
    }
  }

  if (!seen_.empty() && !seen_[chosen]) {
    seen_[chosen] = 1;
    seen_ids_.push_back(chosen);
  }
  return chosen;
}

}  // namespace gannet::infer
