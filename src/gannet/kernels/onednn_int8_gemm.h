// oneDNN's integer matrix product (u8 x s8 -> s32, libdnnl 2.6) as a serving engine would use it:
// the matmul primitive, created once per shape, with the weights reordered once into the layout it
// chooses (format_tag::any). The peer gannet's integer kernels (kernels/quant_matmul.h), whose
// weights are also packed once, are measured against, and the machine's int8 FLOP bound that
// `gannet bench` holds W8A8/W4A8 prompt processing to. (oneDNN's BLAS-style dnnl_gemm_u8s8s32
// repacks the weights on every call: a slower peer than an engine would face.)
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace gannet::kernels {

class OnednnInt8Matmul {
 public:
  // Products C[M, N] = A[M, K] (u8, row-major) x B[N, K]^T (s8, row-major), in int32, no offsets.
  // B is copied into oneDNN's layout here; it need not outlive the object.
  OnednnInt8Matmul(int64_t M, int64_t N, int64_t K, const int8_t* B);
  ~OnednnInt8Matmul();
  OnednnInt8Matmul(const OnednnInt8Matmul&) = delete;
  OnednnInt8Matmul& operator=(const OnednnInt8Matmul&) = delete;
  // C (M x N, row-major) = A (M x K, row-major) x B^T.
  void run(const uint8_t* A, int32_t* C) const;
  // oneDNN's name for the implementation it chose, and the weights' layout ("gemm:jit", ...).
  std::string implementation() const;
  // Whether oneDNN's product is exact over the whole u8 x s8 range on this CPU. Without VNNI its
  // kernels add pairs of u8 x s8 products in int16 with saturation (vpmaddubsw): exact only while
  // |weights| <= 64. Found by computing a product whose pairs overflow int16 (once per process).
  static bool exact_at_full_range();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Multiply-adds x 2 per second (GOP/s) of OnednnInt8Matmul on an n x n x n product (weights
// reordered before timing): the median of `runs` runs after one warm-up.
double measure_onednn_int8_gops(int64_t n, int runs);

}  // namespace gannet::kernels
