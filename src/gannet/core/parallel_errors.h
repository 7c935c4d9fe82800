// Exceptions and OpenMP: an exception that leaves a parallel region (or one iteration of a
// worksharing loop) ends the process with std::terminate. Bodies that can throw run through
// ParallelErrors::run, which keeps the first exception; the caller rethrows it after the region:
//
//   ParallelErrors errors;
//   #pragma omp parallel for
//   for (int64_t i = 0; i < n; ++i) errors.run([&] { work(i); });
//   errors.rethrow();
//
// After a failure the remaining bodies are skipped (their iterations still run, doing nothing).
#pragma once
#include <atomic>
#include <exception>
#include <mutex>

namespace gannet {

class ParallelErrors {
 public:
  template <class F>
  void run(F&& body) noexcept {
    if (failed_.load(std::memory_order_relaxed)) return;
    try {
      body();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!first_) first_ = std::current_exception();
      failed_.store(true, std::memory_order_relaxed);
    }
  }
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  // Rethrows the first exception caught, if any. Call after the parallel region.
  void rethrow() {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::atomic<bool> failed_{false};
  std::mutex mu_;
  std::exception_ptr first_;
};

}  // namespace gannet
