// dist::Communicator: the only way gannet code talks to other processes. Collectives over a group
// of ranks (all-reduce, reduce-scatter, all-gather, all-to-all with counts, broadcast, barrier),
// blocking and non-blocking, and a count of the bytes each kind of collective moved. The model and
// training code call this interface; LocalCommunicator (one process) and MpiCommunicator implement it.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gannet::dist {

enum class Collective { all_reduce, reduce_scatter, all_gather, all_to_all, broadcast, barrier };
constexpr int kCollectives = 6;
const char* collective_name(Collective c);

// What one kind of collective moved on this rank since the last reset. payload_bytes: the buffer the
// caller handed over (an all-reduce's whole vector, a reduce-scatter's input, an all-gather's
// output, an all-to-all's send buffer). wire_bytes: what this rank sends to other ranks under the
// bandwidth-optimal algorithms (ring all-reduce 2 (N-1)/N S, reduce-scatter and all-gather (N-1)/N S
// of the whole vector S, all-to-all the rows sent to other ranks, broadcast S from the root).
struct CollectiveStats {
  int64_t calls = 0;
  int64_t payload_bytes = 0;
  int64_t wire_bytes = 0;
};

// A non-blocking collective in flight; wait() returns when its output buffer is complete. The
// buffers passed to the call must stay alive until then. Destroying an unfinished request waits.
class Request {
 public:
  virtual ~Request() = default;
  virtual void wait() = 0;
  // Whether it is complete (drives progress of the transport; never blocks).
  virtual bool test() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Short description for messages ("mpi rank 1 of 4", "local").
  virtual std::string describe() const = 0;

  // In place: data[i] = sum over ranks of data[i].
  void all_reduce_sum(float* data, int64_t n);
  void all_reduce_sum(double* data, int64_t n);
  // In place: data[i] = max over ranks of data[i].
  void all_reduce_max(float* data, int64_t n);
  void all_reduce_max(int64_t* data, int64_t n);
  // in holds size() blocks of `block` floats; this rank gets block rank() summed over ranks.
  void reduce_scatter_sum(const float* in, float* out, int64_t block);
  // out = the concatenation of every rank's `in` (block floats each), in rank order.
  void all_gather(const float* in, float* out, int64_t block);
  void all_gather(const int64_t* in, int64_t* out, int64_t block);
  // send holds send_counts[r] floats for rank r, in rank order; recv gets recv_counts[r] from rank r.
  // Counts must agree pairwise (what r sends to s is what s expects from r).
  void all_to_all(const float* send, const std::vector<int64_t>& send_counts, float* recv,
                  const std::vector<int64_t>& recv_counts);
  // The root's `bytes` bytes at data, on every rank.
  void broadcast(void* data, int64_t bytes, int root);
  void barrier();

  std::unique_ptr<Request> all_reduce_sum_async(float* data, int64_t n);
  std::unique_ptr<Request> reduce_scatter_sum_async(const float* in, float* out, int64_t block);
  std::unique_ptr<Request> all_gather_async(const float* in, float* out, int64_t block);

  // A sub-group: ranks with the same color, ordered by key (then by rank).
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;

  const CollectiveStats& stats(Collective c) const { return stats_[(size_t)c]; }
  void reset_stats() { stats_ = {}; }

 protected:
  enum class Elem { f32, f64, i64 };
  enum class Op { sum, max };
  static int64_t elem_bytes(Elem e) { return e == Elem::f32 ? 4 : 8; }
  virtual void do_all_reduce(void* data, int64_t n, Elem e, Op op) = 0;
  virtual void do_reduce_scatter(const float* in, float* out, int64_t block) = 0;
  virtual void do_all_gather(const void* in, void* out, int64_t block, Elem e) = 0;
  virtual void do_all_to_all(const float* send, const std::vector<int64_t>& send_counts, float* recv,
                             const std::vector<int64_t>& recv_counts) = 0;
  virtual void do_broadcast(void* data, int64_t bytes, int root) = 0;
  virtual void do_barrier() = 0;
  virtual std::unique_ptr<Request> do_all_reduce_async(float* data, int64_t n) = 0;
  virtual std::unique_ptr<Request> do_reduce_scatter_async(const float* in, float* out, int64_t block) = 0;
  virtual std::unique_ptr<Request> do_all_gather_async(const float* in, float* out, int64_t block) = 0;

 private:
  void count(Collective c, int64_t payload, int64_t wire);
  std::array<CollectiveStats, kCollectives> stats_{};
};

// One process: every collective is the identity (or a copy) and moves nothing.
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string describe() const override { return "local"; }
  std::unique_ptr<Communicator> split(int, int) override { return std::make_unique<LocalCommunicator>(); }

 protected:
  void do_all_reduce(void*, int64_t, Elem, Op) override {}
  void do_reduce_scatter(const float* in, float* out, int64_t block) override;
  void do_all_gather(const void* in, void* out, int64_t block, Elem e) override;
  void do_all_to_all(const float* send, const std::vector<int64_t>& send_counts, float* recv,
                     const std::vector<int64_t>& recv_counts) override;
  void do_broadcast(void*, int64_t, int) override {}
  void do_barrier() override {}
  std::unique_ptr<Request> do_all_reduce_async(float* data, int64_t n) override;
  std::unique_ptr<Request> do_reduce_scatter_async(const float* in, float* out, int64_t block) override;
  std::unique_ptr<Request> do_all_gather_async(const float* in, float* out, int64_t block) override;
};

// A request that is already complete.
class DoneRequest final : public Request {
 public:
  void wait() override {}
  bool test() override { return true; }
};

}  // namespace gannet::dist
