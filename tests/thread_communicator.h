// A group of t ranks inside one process, for testing the dist/ ops' math in gannet_tests without
// MPI: ThreadGroup::run starts one thread per rank, each with its own ThreadCommunicator, and the
// collectives meet at a barrier (each rank publishes its buffer, then computes its own result from
// all of them). The autograd tape and grad mode are per thread, so each rank runs its own passes.
#pragma once
#include <algorithm>
#include <barrier>
#include <cstring>
#include <exception>
#include <functional>
#include <thread>
#include <vector>

#include "gannet/core/error.h"
#include "gannet/dist/communicator.h"

namespace gannet::testing {

class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size), barrier_(size), slots_((size_t)size) {}
  int size() const { return size_; }
  // fn(group communicator of rank r) on rank r's thread, for every r; rethrows the first rank's
  // error. A rank that throws leaves the group, and the others' next collective fails.
  void run(const std::function<void(dist::Communicator&)>& fn);

 private:
  friend class ThreadCommunicator;
  struct Slot {
    const void* data = nullptr;
    const std::vector<int64_t>* counts = nullptr;  // all-to-all send counts
    bool left = false;
  };
  int size_;
  std::barrier<> barrier_;
  std::vector<Slot> slots_;
};

class ThreadCommunicator final : public dist::Communicator {
 public:
  ThreadCommunicator(ThreadGroup& g, int rank) : g_(g), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_.size_; }
  std::string describe() const override { return str("thread rank ", rank_, " of ", g_.size_); }
  std::unique_ptr<dist::Communicator> split(int, int) override {
    fail("ThreadCommunicator: sub-groups are not supported");
  }
  void leave() {
    g_.slots_[(size_t)rank_] = ThreadGroup::Slot{nullptr, nullptr, true};
    g_.barrier_.arrive_and_drop();
  }

 protected:
  void do_all_reduce(void* data, int64_t n, Elem e, Op op) override {
    std::vector<char> out = gather_inputs(data, n * elem_bytes(e), [&](int q, const void* in, char* acc) {
      if (e == Elem::f32) combine<float>(acc, in, n, op, q == 0);
      else if (e == Elem::f64) combine<double>(acc, in, n, op, q == 0);
      else combine<int64_t>(acc, in, n, op, q == 0);
    });
    finish(data, out);
  }
  void do_reduce_scatter(const float* in, float* out, int64_t block) override {
    std::vector<char> r = gather_inputs(in, block * 4, [&](int q, const void* src, char* acc) {
      combine<float>(acc, static_cast<const float*>(src) + rank_ * block, block, Op::sum, q == 0);
    });
    finish(out, r);
  }
  void do_all_gather(const void* in, void* out, int64_t block, Elem e) override {
    const int64_t bytes = block * elem_bytes(e);
    std::vector<char> r = gather_inputs(in, bytes * size(), [&](int q, const void* src, char* acc) {
      std::memcpy(acc + q * bytes, src, (size_t)bytes);
    });
    finish(out, r);
  }
  void do_all_to_all(const float* send, const std::vector<int64_t>& send_counts, float* recv,
                     const std::vector<int64_t>& recv_counts) override {
    int64_t total = 0;
    for (int64_t c : recv_counts) total += c;
    int64_t at = 0;
    std::vector<char> r = gather_inputs(
        send, total * 4,
        [&](int q, const void* src, char* acc) {
          const std::vector<int64_t>& theirs = *g_.slots_[(size_t)q].counts;
          GANNET_CHECK(theirs[(size_t)rank_] == recv_counts[(size_t)q], "all_to_all: rank ", q, " sends ",
                       theirs[(size_t)rank_], ", rank ", rank_, " expects ", recv_counts[(size_t)q]);
          int64_t offset = 0;
          for (int s = 0; s < rank_; ++s) offset += theirs[(size_t)s];
          std::memcpy(acc + at * 4, static_cast<const float*>(src) + offset, (size_t)recv_counts[(size_t)q] * 4);
          at += recv_counts[(size_t)q];
        },
        &send_counts);
    finish(recv, r);
  }
  void do_broadcast(void* data, int64_t bytes, int root) override {
    std::vector<char> r = gather_inputs(data, bytes, [&](int q, const void* src, char* acc) {
      if (q == root) std::memcpy(acc, src, (size_t)bytes);
    });
    finish(data, r);
  }
  void do_barrier() override {
    gather_inputs(this, 0, [](int, const void*, char*) {});
    g_.barrier_.arrive_and_wait();
  }
  std::unique_ptr<dist::Request> do_all_reduce_async(float* data, int64_t n) override {
    do_all_reduce(data, n, Elem::f32, Op::sum);
    return std::make_unique<dist::DoneRequest>();
  }
  std::unique_ptr<dist::Request> do_reduce_scatter_async(const float* in, float* out, int64_t block) override {
    do_reduce_scatter(in, out, block);
    return std::make_unique<dist::DoneRequest>();
  }
  std::unique_ptr<dist::Request> do_all_gather_async(const float* in, float* out, int64_t block) override {
    do_all_gather(in, out, block, Elem::f32);
    return std::make_unique<dist::DoneRequest>();
  }

 private:
  template <class T>
  static void combine(char* acc, const void* in, int64_t n, Op op, bool first) {
    T* a = reinterpret_cast<T*>(acc);
    const T* x = static_cast<const T*>(in);
    for (int64_t i = 0; i < n; ++i) a[i] = first ? x[i] : op == Op::sum ? a[i] + x[i] : std::max(a[i], x[i]);
  }
  // Publishes `mine`, waits for every rank, and folds their inputs in rank order into a result
  // of `bytes` bytes; the caller writes it out after the second barrier (finish).
  std::vector<char> gather_inputs(const void* mine, int64_t bytes,
                                  const std::function<void(int, const void*, char*)>& fold,
                                  const std::vector<int64_t>* counts = nullptr) {
    g_.slots_[(size_t)rank_] = ThreadGroup::Slot{mine, counts, false};
    g_.barrier_.arrive_and_wait();
    std::vector<char> out((size_t)bytes);
    for (int q = 0; q < size(); ++q) {
      const ThreadGroup::Slot& s = g_.slots_[(size_t)q];
      GANNET_CHECK(!s.left, "ThreadCommunicator: rank ", q, " left the group");
      fold(q, s.data, out.data());
    }
    return out;
  }
  // Every rank has read every input: now each may overwrite its own buffer.
  void finish(void* dst, const std::vector<char>& result) {
    g_.barrier_.arrive_and_wait();
    if (!result.empty()) std::memcpy(dst, result.data(), result.size());
  }

  ThreadGroup& g_;
  int rank_;
};

inline void ThreadGroup::run(const std::function<void(dist::Communicator&)>& fn) {
  std::vector<std::exception_ptr> errors((size_t)size_);
  std::vector<std::thread> threads;
  for (int r = 0; r < size_; ++r)
    threads.emplace_back([this, r, &fn, &errors] {
      ThreadCommunicator comm(*this, r);
      try {
        fn(comm);
      } catch (...) {
        errors[(size_t)r] = std::current_exception();
        comm.leave();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace gannet::testing
