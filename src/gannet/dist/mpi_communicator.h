// Communicator over MPI (OpenMPI from Debian): the world of an `mpirun -np N` launch, or a sub-group
// split from it. One thread at a time may call it (MPI_THREAD_SERIALIZED: the main thread, or a
// server's scheduler thread while the main thread serves HTTP); the kernels' OpenMP threads never do.
#pragma once
#include <mpi.h>

#include "gannet/dist/communicator.h"

namespace gannet::dist {

class MpiCommunicator final : public Communicator {
 public:
  // Takes ownership of `comm` (freed on destruction) unless it is MPI_COMM_WORLD.
  explicit MpiCommunicator(MPI_Comm comm);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override;
  std::unique_ptr<Communicator> split(int color, int key) override;

 protected:
  void do_all_reduce(void* data, int64_t n, Elem e, Op op) override;
  void do_reduce_scatter(const float* in, float* out, int64_t block) override;
  void do_all_gather(const void* in, void* out, int64_t block, Elem e) override;
  void do_all_to_all(const float* send, const std::vector<int64_t>& send_counts, float* recv,
                     const std::vector<int64_t>& recv_counts) override;
  void do_broadcast(void* data, int64_t bytes, int root) override;
  void do_barrier() override;
  std::unique_ptr<Request> do_all_reduce_async(float* data, int64_t n) override;
  std::unique_ptr<Request> do_reduce_scatter_async(const float* in, float* out, int64_t block) override;
  std::unique_ptr<Request> do_all_gather_async(const float* in, float* out, int64_t block) override;

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

}  // namespace gannet::dist
