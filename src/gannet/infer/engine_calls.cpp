#include "gannet/infer/engine_calls.h"

#include "gannet/core/error.h"
#include "gannet/dist/communicator.h"

namespace gannet::infer {

EngineCall EngineCall::of_chunks(Op op, std::span<const Chunk> chunks) {
  EngineCall c;
  c.op = op;
  for (const Chunk& k : chunks) {
    c.seqs.push_back(k.seq);
    c.lengths.push_back((int64_t)k.tokens.size());
    c.tokens.insert(c.tokens.end(), k.tokens.begin(), k.tokens.end());
  }
  return c;
}

EngineCall EngineCall::of_reset(int64_t seq) {
  EngineCall c;
  c.op = Op::reset;
  c.seqs = {seq};
  c.lengths = {0};
  return c;
}

std::vector<Chunk> EngineCall::chunks() const {
  std::vector<Chunk> out;
  size_t at = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    out.push_back({seqs[i], std::span<const int32_t>(tokens).subspan(at, (size_t)lengths[i])});
    at += (size_t)lengths[i];
  }
  return out;
}

// A header (op, chunks, tokens), then the chunks' sequences and lengths, then the tokens.
void send_call(dist::Communicator& group, const EngineCall& call) {
  int64_t head[3] = {(int64_t)call.op, (int64_t)call.seqs.size(), (int64_t)call.tokens.size()};
  group.broadcast(head, sizeof head, 0);
  std::vector<int64_t> body(call.seqs);
  body.insert(body.end(), call.lengths.begin(), call.lengths.end());
  if (!body.empty()) group.broadcast(body.data(), (int64_t)(body.size() * sizeof(int64_t)), 0);
  if (!call.tokens.empty())
    group.broadcast(const_cast<int32_t*>(call.tokens.data()), (int64_t)(call.tokens.size() * sizeof(int32_t)), 0);
}

EngineCall receive_call(dist::Communicator& group) {
  int64_t head[3] = {0, 0, 0};
  group.broadcast(head, sizeof head, 0);
  GANNET_CHECK(head[0] >= 0 && head[0] <= 3 && head[1] >= 0 && head[2] >= 0, "engine: rank ", group.rank(),
               " received a malformed call from rank 0");
  EngineCall c;
  c.op = (EngineCall::Op)head[0];
  std::vector<int64_t> body(2 * head[1]);
  if (!body.empty()) group.broadcast(body.data(), (int64_t)(body.size() * sizeof(int64_t)), 0);
  c.seqs.assign(body.begin(), body.begin() + head[1]);
  c.lengths.assign(body.begin() + head[1], body.end());
  c.tokens.resize(head[2]);
  if (!c.tokens.empty()) group.broadcast(c.tokens.data(), (int64_t)(c.tokens.size() * sizeof(int32_t)), 0);
  int64_t total = 0;
  for (int64_t n : c.lengths) {
    GANNET_CHECK(n >= 0, "engine: rank ", group.rank(), " received a malformed call from rank 0");
    total += n;
  }
  GANNET_CHECK(total == head[2], "engine: rank ", group.rank(), " received a malformed call from rank 0");
  return c;
}

}  // namespace gannet::infer
