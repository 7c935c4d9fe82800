// The calls a tensor-parallel engine's rank 0 sends to the other ranks when only rank 0 is driven
// by a caller (EngineOptions::lead_followers: a server's scheduler): each forward(),
// forward_all() and reset(), as broadcasts from rank 0, then `stop` when its engine goes away.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "gannet/infer/engine.h"

namespace gannet::dist {
class Communicator;
}

namespace gannet::infer {

struct EngineCall {
  enum class Op : int64_t { stop = 0, forward = 1, forward_all = 2, reset = 3 };
  Op op = Op::stop;
  // forward and forward_all: each chunk's sequence and its tokens, in order; reset: seqs[0].
  std::vector<int64_t> seqs, lengths;
  std::vector<int32_t> tokens;

  static EngineCall of_chunks(Op op, std::span<const Chunk> chunks);
  static EngineCall of_reset(int64_t seq);
  // The chunks the call carries (spans into `tokens`).
  std::vector<Chunk> chunks() const;
};

// Rank 0: sends `call` to every other rank of the group.
void send_call(dist::Communicator& group, const EngineCall& call);
// Other ranks: the next call rank 0 sends (blocks until it does).
EngineCall receive_call(dist::Communicator& group);

}  // namespace gannet::infer
