// Tests that compare results across thread counts change the kernels' thread count; this puts it
// back when the test ends, pass or fail.
#pragma once
#include "gannet/kernels/gemm.h"

namespace gannet::testing {

class RestoreThreadCount {
 public:
  RestoreThreadCount() : saved_(kernels::num_threads()) {}
  ~RestoreThreadCount() { kernels::set_num_threads(saved_); }
  RestoreThreadCount(const RestoreThreadCount&) = delete;
  RestoreThreadCount& operator=(const RestoreThreadCount&) = delete;

 private:
  int saved_;
};

}  // namespace gannet::testing
