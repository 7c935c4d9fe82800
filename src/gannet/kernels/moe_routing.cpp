#include "gannet/kernels/moe_routing.h"

#include <algorithm>
#include <cmath>

#include "gannet/core/error.h"

namespace gannet::kernels {

int32_t MoeRouting::slot_expert(int64_t slot) const {
  auto it = std::upper_bound(offsets.begin(), offsets.end(), (int32_t)slot);
  return (int32_t)(it - offsets.begin()) - 1;
}

int64_t moe_capacity(int64_t tokens, int64_t experts, int64_t k, double factor, int64_t min_capacity) {
  GANNET_CHECK(tokens >= 0 && experts > 0 && k > 0 && factor > 0, "moe capacity: bad arguments (tokens ", tokens,
               ", experts ", experts, ", k ", k, ", factor ", factor, ")");
  int64_t c = (int64_t)std::ceil((double)k * (double)tokens / (double)experts * factor);
  return std::max(c, min_capacity);
}

namespace {
// Fills the slot arrays from each expert's kept (token, rank) pairs, which must be in token order.
void finish_routing(std::vector<std::vector<std::pair<int32_t, int32_t>>>& kept, int64_t N, MoeRouting& out) {
  const int64_t E = (int64_t)kept.size();
  out.offsets.assign((size_t)E + 1, 0);
  for (int64_t e = 0; e < E; ++e) out.offsets[(size_t)e + 1] = out.offsets[(size_t)e] + (int32_t)kept[(size_t)e].size();
  const int64_t S = out.offsets.back();
  out.slot_token.resize((size_t)S);
  out.slot_rank.resize((size_t)S);
  out.token_offsets.assign((size_t)N + 1, 0);
  for (int64_t e = 0; e < E; ++e) {
    int64_t s = out.offsets[(size_t)e];
    for (auto [tok, rank] : kept[(size_t)e]) {
      out.slot_token[(size_t)s] = tok;
      out.slot_rank[(size_t)s] = rank;
      ++out.token_offsets[(size_t)tok + 1];
      ++s;
    }
  }
  for (int64_t n = 0; n < N; ++n) out.token_offsets[(size_t)n + 1] += out.token_offsets[(size_t)n];
  // Slots are visited in ascending order, so each token's list comes out ascending.
  std::vector<int32_t> fill(out.token_offsets.begin(), out.token_offsets.end() - 1);
  out.token_slots.resize((size_t)S);
  for (int64_t s = 0; s < S; ++s) out.token_slots[(size_t)fill[(size_t)out.slot_token[(size_t)s]]++] = (int32_t)s;
}
}  // namespace

void route_top_k(const float* scores, int64_t N, int64_t E, int64_t k, int64_t capacity, const float* priority,
                 MoeRouting& out) {
  GANNET_CHECK(E > 0 && k > 0 && k <= E, "moe routing: k ", k, " must be in [1, experts ", E, "]");
  out.tokens = N;
  out.experts = E;
  out.capacity = capacity;
  // Each token's choices, best first.
  std::vector<int32_t> choice((size_t)(N * k));
  for (int64_t n = 0; n < N; ++n) {
    const float* row = scores + n * E;
    for (int64_t r = 0; r < k; ++r) {
      int32_t best = -1;
      for (int64_t e = 0; e < E; ++e) {
        bool taken = false;
        for (int64_t q = 0; q < r; ++q) taken |= choice[(size_t)(n * k + q)] == (int32_t)e;
        if (taken) continue;
        if (best < 0 || row[e] > row[best]) best = (int32_t)e;
      }
      choice[(size_t)(n * k + r)] = best;
    }
  }
  // Candidates per expert, by rank then token (a counting sort).
  out.demand.assign((size_t)E, 0);
  for (int32_t e : choice) ++out.demand[(size_t)e];
  std::vector<std::vector<std::pair<int32_t, int32_t>>> cand((size_t)E);
  for (int64_t e = 0; e < E; ++e) cand[(size_t)e].reserve((size_t)out.demand[(size_t)e]);
  for (int64_t r = 0; r < k; ++r)
    for (int64_t n = 0; n < N; ++n) cand[(size_t)choice[(size_t)(n * k + r)]].push_back({(int32_t)n, (int32_t)r});
  out.dropped = 0;
  for (auto& c : cand) {
    if (capacity >= 0 && (int64_t)c.size() > capacity) {
      if (priority) {
        // Within each rank, higher priority first; the sort is stable, so equal priorities keep token order.
        std::stable_sort(c.begin(), c.end(), [&](const auto& a, const auto& b) {
          if (a.second != b.second) return a.second < b.second;
          return priority[a.first] > priority[b.first];
        });
      }
      out.dropped += (int64_t)c.size() - capacity;
      c.resize((size_t)capacity);
      std::sort(c.begin(), c.end());
    } else {
      std::sort(c.begin(), c.end());
    }
  }
  finish_routing(cand, N, out);
}

void route_expert_choice(const float* scores, int64_t N, int64_t E, int64_t capacity, MoeRouting& out) {
  GANNET_CHECK(E > 0 && capacity > 0, "moe routing: expert choice needs experts and capacity > 0");
  const int64_t c = std::min(capacity, N);
  out.tokens = N;
  out.experts = E;
  out.capacity = c;
  out.demand.assign((size_t)E, c);
  std::vector<std::vector<std::pair<int32_t, int32_t>>> kept((size_t)E);
  std::vector<int32_t> order((size_t)N);
  for (int64_t e = 0; e < E; ++e) {
    for (int64_t n = 0; n < N; ++n) order[(size_t)n] = (int32_t)n;
    auto better = [&](int32_t a, int32_t b) {
      float sa = scores[(int64_t)a * E + e], sb = scores[(int64_t)b * E + e];
      return sa != sb ? sa > sb : a < b;
    };
    std::nth_element(order.begin(), order.begin() + (c - 1), order.end(), better);
    std::vector<std::pair<int32_t, int32_t>>& k = kept[(size_t)e];
    k.reserve((size_t)c);
    for (int64_t i = 0; i < c; ++i) k.push_back({order[(size_t)i], 0});
    std::sort(k.begin(), k.end());
  }
  finish_routing(kept, N, out);
  out.dropped = 0;
  for (int64_t n = 0; n < N; ++n) out.dropped += out.token_offsets[(size_t)n + 1] == out.token_offsets[(size_t)n];
}

}  // namespace gannet::kernels
