// A Linear layer's weight as the inference engine holds it: [out, in] packed for the decode kernel
// (kernels/skinny_matmul.h) in the format chosen at load (f32, or bf16 widened in registers),
// with its f32 bias. apply() picks the kernel by the number of activation rows: few rows (decode)
// go to the bandwidth-bound skinny kernel, many rows (prefill) to the GEMM, which gets the
// weights unpacked a block of rows at a time. This is the seam where quantized formats plug in.
#pragma once
#include <cstdint>

#include "gannet/core/tensor.h"
#include "gannet/kernels/skinny_matmul.h"

namespace gannet::infer {

class LinearWeight {
 public:
  // Up to this many rows use the skinny kernel. Decode batches must stay at or below it, so that
  // a row's result never depends on the batch (the GEMM's blocking may depend on M).
  static constexpr int64_t kSkinnyMaxRows = 32;
  // Rows of W unpacked at a time for the GEMM (the f32 scratch apply() needs: this x in).
  static constexpr int64_t kWidenRows = 512;

  LinearWeight() = default;
  // weight: packed by kernels::pack_weights (1-D f32 or bf16 of kernels::packed_size elements);
  // bias: [out] f32 or undefined (no bias).
  LinearWeight(Tensor weight, int64_t out, int64_t in, Tensor bias);

  int64_t out_features() const { return out_; }
  int64_t in_features() const { return in_; }
  DType dtype() const { return weight_.dtype(); }
  const Tensor& weight() const { return weight_; }
  int64_t weight_bytes() const { return (int64_t)weight_.nbytes(); }
  kernels::PackedMatrix packed() const;
  // Floats of scratch apply() needs for M rows (0 on the skinny path).
  int64_t scratch_floats(int64_t M) const;

  // Y[m, :] = epilogue(X[m, :] W^T + b) for m < M. Y must not alias X.
  void apply(const float* X, int64_t ldx, int64_t M, float* Y, int64_t ldy, kernels::Epilogue e,
             float* scratch) const;

 private:
  Tensor weight_, bias_;
  int64_t out_ = 0, in_ = 0;
};

}  // namespace gannet::infer
