#include "gannet/dist/communicator.h"

#include <cstring>

#include "gannet/core/error.h"

namespace gannet::dist {

const char* collective_name(Collective c) {
  switch (c) {
    case Collective::all_reduce: return "all_reduce";
    case Collective::reduce_scatter: return "reduce_scatter";
    case Collective::all_gather: return "all_gather";
    case Collective::all_to_all: return "all_to_all";
    case Collective::broadcast: return "broadcast";
    case Collective::barrier: return "barrier";
  }
  return "?";
}

void Communicator::count(Collective c, int64_t payload, int64_t wire) {
  CollectiveStats& s = stats_[(size_t)c];
  ++s.calls;
  s.payload_bytes += payload;
  s.wire_bytes += wire;
}

namespace {
// Bytes this rank sends in a ring over N ranks moving `steps` blocks of S / N each.
int64_t ring_bytes(int64_t total_bytes, int n, int steps) {
  return n <= 1 ? 0 : total_bytes / n * (n - 1) * steps;
}
}  // namespace

void Communicator::all_reduce_sum(float* data, int64_t n) {
  GANNET_CHECK(n >= 0, "all_reduce: negative count ", n);
  count(Collective::all_reduce, n * 4, ring_bytes(n * 4, size(), 2));
  if (n) do_all_reduce(data, n, Elem::f32, Op::sum);
}

void Communicator::all_reduce_sum(double* data, int64_t n) {
  GANNET_CHECK(n >= 0, "all_reduce: negative count ", n);
  count(Collective::all_reduce, n * 8, ring_bytes(n * 8, size(), 2));
  if (n) do_all_reduce(data, n, Elem::f64, Op::sum);
}

void Communicator::all_reduce_max(float* data, int64_t n) {
  GANNET_CHECK(n >= 0, "all_reduce: negative count ", n);
  count(Collective::all_reduce, n * 4, ring_bytes(n * 4, size(), 2));
  if (n) do_all_reduce(data, n, Elem::f32, Op::max);
}

void Communicator::all_reduce_max(int64_t* data, int64_t n) {
  GANNET_CHECK(n >= 0, "all_reduce: negative count ", n);
  count(Collective::all_reduce, n * 8, ring_bytes(n * 8, size(), 2));
  if (n) do_all_reduce(data, n, Elem::i64, Op::max);
}

void Communicator::reduce_scatter_sum(const float* in, float* out, int64_t block) {
  GANNET_CHECK(block >= 0, "reduce_scatter: negative block ", block);
  count(Collective::reduce_scatter, block * size() * 4, ring_bytes(block * size() * 4, size(), 1));
  if (block) do_reduce_scatter(in, out, block);
}

void Communicator::all_gather(const float* in, float* out, int64_t block) {
  GANNET_CHECK(block >= 0, "all_gather: negative block ", block);
  count(Collective::all_gather, block * size() * 4, ring_bytes(block * size() * 4, size(), 1));
  if (block) do_all_gather(in, out, block, Elem::f32);
}

void Communicator::all_gather(const int64_t* in, int64_t* out, int64_t block) {
  GANNET_CHECK(block >= 0, "all_gather: negative block ", block);
  count(Collective::all_gather, block * size() * 8, ring_bytes(block * size() * 8, size(), 1));
  if (block) do_all_gather(in, out, block, Elem::i64);
}

void Communicator::all_to_all(const float* send, const std::vector<int64_t>& send_counts, float* recv,
                              const std::vector<int64_t>& recv_counts) {
  GANNET_CHECK((int)send_counts.size() == size() && (int)recv_counts.size() == size(), "all_to_all: ",
               send_counts.size(), " send and ", recv_counts.size(), " receive counts for ", size(), " ranks");
  int64_t total = 0, remote = 0;
  for (int r = 0; r < size(); ++r) {
    GANNET_CHECK(send_counts[(size_t)r] >= 0 && recv_counts[(size_t)r] >= 0, "all_to_all: negative count");
    total += send_counts[(size_t)r];
    if (r != rank()) remote += send_counts[(size_t)r];
  }
  count(Collective::all_to_all, total * 4, remote * 4);
  do_all_to_all(send, send_counts, recv, recv_counts);
}

void Communicator::broadcast(void* data, int64_t bytes, int root) {
  GANNET_CHECK(root >= 0 && root < size(), "broadcast: root ", root, " out of ", size(), " ranks");
  count(Collective::broadcast, bytes, rank() == root && size() > 1 ? bytes : 0);
  if (bytes) do_broadcast(data, bytes, root);
}

void Communicator::barrier() {
  count(Collective::barrier, 0, 0);
  do_barrier();
}

std::unique_ptr<Request> Communicator::all_reduce_sum_async(float* data, int64_t n) {
  GANNET_CHECK(n >= 0, "all_reduce: negative count ", n);
  count(Collective::all_reduce, n * 4, ring_bytes(n * 4, size(), 2));
  if (!n) return std::make_unique<DoneRequest>();
  return do_all_reduce_async(data, n);
}

std::unique_ptr<Request> Communicator::reduce_scatter_sum_async(const float* in, float* out, int64_t block) {
  GANNET_CHECK(block >= 0, "reduce_scatter: negative block ", block);
  count(Collective::reduce_scatter, block * size() * 4, ring_bytes(block * size() * 4, size(), 1));
  if (!block) return std::make_unique<DoneRequest>();
  return do_reduce_scatter_async(in, out, block);
}

std::unique_ptr<Request> Communicator::all_gather_async(const float* in, float* out, int64_t block) {
  GANNET_CHECK(block >= 0, "all_gather: negative block ", block);
  count(Collective::all_gather, block * size() * 4, ring_bytes(block * size() * 4, size(), 1));
  if (!block) return std::make_unique<DoneRequest>();
  return do_all_gather_async(in, out, block);
}

void LocalCommunicator::do_reduce_scatter(const float* in, float* out, int64_t block) {
  if (in != out) std::memmove(out, in, (size_t)block * 4);
}

void LocalCommunicator::do_all_gather(const void* in, void* out, int64_t block, Elem e) {
  if (in != out) std::memmove(out, in, (size_t)(block * elem_bytes(e)));
}

void LocalCommunicator::do_all_to_all(const float* send, const std::vector<int64_t>& send_counts, float* recv,
                                      const std::vector<int64_t>& recv_counts) {
  GANNET_CHECK(send_counts[0] == recv_counts[0], "all_to_all: sends ", send_counts[0], " to itself, expects ",
               recv_counts[0]);
  if (send != recv && send_counts[0]) std::memmove(recv, send, (size_t)send_counts[0] * 4);
}

std::unique_ptr<Request> LocalCommunicator::do_all_reduce_async(float*, int64_t) {
  return std::make_unique<DoneRequest>();
}

std::unique_ptr<Request> LocalCommunicator::do_reduce_scatter_async(const float* in, float* out, int64_t block) {
  do_reduce_scatter(in, out, block);
  return std::make_unique<DoneRequest>();
}

std::unique_ptr<Request> LocalCommunicator::do_all_gather_async(const float* in, float* out, int64_t block) {
  do_all_gather(in, out, block, Elem::f32);
  return std::make_unique<DoneRequest>();
}

}  // namespace gannet::dist
