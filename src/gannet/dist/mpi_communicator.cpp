#include "gannet/dist/mpi_communicator.h"

#include <climits>

#include "gannet/core/error.h"

namespace gannet::dist {

namespace {

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fail(str("MPI ", what, " failed: ", std::string(msg, (size_t)len)));
}

int as_int(int64_t n, const char* what) {
  GANNET_CHECK(n >= 0 && n <= INT_MAX, "MPI ", what, ": count ", n, " exceeds the int range");
  return (int)n;
}

class MpiRequest final : public Request {
 public:
  MpiRequest() = default;
  ~MpiRequest() override {
    if (req_ != MPI_REQUEST_NULL) MPI_Wait(&req_, MPI_STATUS_IGNORE);
  }
  void wait() override { check(MPI_Wait(&req_, MPI_STATUS_IGNORE), "wait"); }
  bool test() override {
    int done = 0;
    check(MPI_Test(&req_, &done, MPI_STATUS_IGNORE), "test");
    return done != 0;
  }
  MPI_Request* get() { return &req_; }

 private:
  MPI_Request req_ = MPI_REQUEST_NULL;
};

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm) : comm_(comm) {
  // Errors come back as return codes (turned into gannet::Error), instead of aborting inside MPI.
  check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "set_errhandler");
  check(MPI_Comm_rank(comm_, &rank_), "comm_rank");
  check(MPI_Comm_size(comm_, &size_), "comm_size");
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_WORLD && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

std::string MpiCommunicator::describe() const { return str("mpi rank ", rank_, " of ", size_); }

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key) {
  MPI_Comm sub = MPI_COMM_NULL;
  check(MPI_Comm_split(comm_, color, key, &sub), "comm_split");
  return std::make_unique<MpiCommunicator>(sub);
}

void MpiCommunicator::do_all_reduce(void* data, int64_t n, Elem e, Op op) {
  MPI_Datatype t = e == Elem::f32 ? MPI_FLOAT : e == Elem::f64 ? MPI_DOUBLE : MPI_INT64_T;
  check(MPI_Allreduce(MPI_IN_PLACE, data, as_int(n, "all_reduce"), t, op == Op::sum ? MPI_SUM : MPI_MAX, comm_),
        "all_reduce");
}

void MpiCommunicator::do_reduce_scatter(const float* in, float* out, int64_t block) {
  check(MPI_Reduce_scatter_block(in, out, as_int(block, "reduce_scatter"), MPI_FLOAT, MPI_SUM, comm_),
        "reduce_scatter");
}

void MpiCommunicator::do_all_gather(const void* in, void* out, int64_t block, Elem e) {
  int n = as_int(block, "all_gather");
  MPI_Datatype t = e == Elem::f32 ? MPI_FLOAT : e == Elem::f64 ? MPI_DOUBLE : MPI_INT64_T;
  check(MPI_Allgather(in, n, t, out, n, t, comm_), "all_gather");
}

void MpiCommunicator::do_all_to_all(const float* send, const std::vector<int64_t>& send_counts, float* recv,
                                    const std::vector<int64_t>& recv_counts) {
  std::vector<int> sc((size_t)size_), sd((size_t)size_), rc((size_t)size_), rd((size_t)size_);
  int64_t so = 0, ro = 0;
  for (size_t r = 0; r < (size_t)size_; ++r) {
    sc[r] = as_int(send_counts[r], "all_to_all");
    rc[r] = as_int(recv_counts[r], "all_to_all");
    sd[r] = as_int(so, "all_to_all");
    rd[r] = as_int(ro, "all_to_all");
    so += send_counts[r];
    ro += recv_counts[r];
  }
  check(MPI_Alltoallv(send, sc.data(), sd.data(), MPI_FLOAT, recv, rc.data(), rd.data(), MPI_FLOAT, comm_),
        "all_to_all");
}

void MpiCommunicator::do_broadcast(void* data, int64_t bytes, int root) {
  check(MPI_Bcast(data, as_int(bytes, "broadcast"), MPI_BYTE, root, comm_), "broadcast");
}

void MpiCommunicator::do_barrier() { check(MPI_Barrier(comm_), "barrier"); }

std::unique_ptr<Request> MpiCommunicator::do_all_reduce_async(float* data, int64_t n) {
  auto r = std::make_unique<MpiRequest>();
  check(MPI_Iallreduce(MPI_IN_PLACE, data, as_int(n, "all_reduce"), MPI_FLOAT, MPI_SUM, comm_, r->get()),
        "all_reduce");
  return r;
}

std::unique_ptr<Request> MpiCommunicator::do_reduce_scatter_async(const float* in, float* out, int64_t block) {
  auto r = std::make_unique<MpiRequest>();
  check(MPI_Ireduce_scatter_block(in, out, as_int(block, "reduce_scatter"), MPI_FLOAT, MPI_SUM, comm_, r->get()),
        "reduce_scatter");
  return r;
}

std::unique_ptr<Request> MpiCommunicator::do_all_gather_async(const float* in, float* out, int64_t block) {
  auto r = std::make_unique<MpiRequest>();
  int n = as_int(block, "all_gather");
  check(MPI_Iallgather(in, n, MPI_FLOAT, out, n, MPI_FLOAT, comm_, r->get()), "all_gather");
  return r;
}

}  // namespace gannet::dist
