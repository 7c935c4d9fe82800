// Deterministic random numbers (xoshiro256**, seeded by splitmix64). The state is four words,
// saved in checkpoints so that a resumed run draws the same numbers as an uninterrupted one.
#pragma once
#include <array>
#include <cstdint>

namespace gannet {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { seed_with(seed); }
  void seed_with(uint64_t seed);
  uint64_t next_u64();
  // Uniform in [0, 1).
  float uniform() { return (float)(next_u64() >> 40) * (1.0f / 16777216.0f); }
  double uniform_double() { return (double)(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n) { return (uint64_t)(((unsigned __int128)next_u64() * n) >> 64); }
  // Standard normal.
  float normal();

  std::array<uint64_t, 4> state() const { return s_; }
  void set_state(const std::array<uint64_t, 4>& s) { s_ = s; }

 private:
  std::array<uint64_t, 4> s_{};
};

}  // namespace gannet
