// A Linear layer's weight as the inference engine holds it, with its f32 bias, in one of two forms:
//  - float: [out, in] packed for the decode kernel (kernels/skinny_matmul.h) in f32, or bf16
//    widened in registers. apply() picks the kernel by the number of activation rows: few rows
//    (decode) go to the bandwidth-bound skinny kernel, many rows (prefill) to the GEMM, which gets
//    the weights unpacked a block of rows at a time;
//  - quantized (ZeroQuant): int8/int4 group-wise, packed by kernels/quant_matmul.h, whose kernels
//    serve every row count. Inputs are quantized to int8 token-wise or with a static scale (W8A8,
//    W4A8) or stay f32 (weight-only W8A16, W4A16);
//  - low-bit (XTC): binary or ternary bit planes as stored (io/low_bit_tensor.h), read in place by
//    the low-bit product (kernels/low_bit_matmul.h) after apply() quantizes its inputs to int8
//    token-wise (W1A8, W2A8);
//  - N:M sparse (NxMiFormer): int8/int4 kept values and their positions (io/nm_sparse_tensor.h),
//    packed once for the vector kernels when they take the pattern (kernels/nm_sparse_matmul.h:
//    n:4 int8); other patterns and int4 values are held as the dense int8 matrix of the same
//    integers, whose W8A8 product is bitwise the sparse reference's (the memory and speed of
//    W8A8, not of the sparse form). Inputs quantized to int8 token-wise.
#pragma once
#include <cstdint>
#include <functional>

#include "gannet/core/tensor.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/io/low_bit_tensor.h"
#include "gannet/io/nm_sparse_tensor.h"
#include "gannet/kernels/nm_sparse_matmul.h"
#include "gannet/kernels/quant_matmul.h"
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
  // Quantized: `packed` holds kernels::pack_quantized(q.view()) (u8, kernels::qpacked_bytes bytes);
  // q gives the shape (its tensors are not kept).
  LinearWeight(Tensor packed, const io::QuantizedTensor& q, Tensor bias, io::ActivationQuant activations);
  // Low-bit: w's planes and scales (shared, not copied; validated), inputs quantized to int8
  // token-wise; bias [out] f32 or undefined.
  LinearWeight(const io::LowBitTensor& w, Tensor bias);
  // N:M sparse: w's tensors (shared, not copied; validated), inputs quantized token-wise as
  // `inputs` says (int8, or int4 widened to int8 for the sparse kernels); bias [out] f32 or undefined.
  LinearWeight(const io::NmSparseTensor& w, Tensor bias, io::ActivationQuant inputs = {true});

  // This weight with its tensors (packed weight, bias) replaced by move(tensor): the same bytes at
  // another address (weights streamed into a buffer). Float and quantized forms only.
  LinearWeight relocated(const std::function<Tensor(const Tensor&)>& move) const;

  // ZeroQuant's int8/int4 form (not the low-bit one).
  bool quantized() const { return quantized_; }
  bool low_bit() const { return low_bit_.bits != 0; }
  bool nm_sparse() const { return nm_.values.defined(); }
  const io::ActivationQuant& activation_quant() const { return act_; }
  // e.g. "f32", "bf16", "int8 g64 / a8", "int4 g64 / f32"
  std::string describe() const;
  // Row n of the weight, dequantized/widened to f32 (in_features() values): the embedding lookup.
  void row(int64_t n, float* out) const;

  int64_t out_features() const { return out_; }
  int64_t in_features() const { return in_; }
  const Tensor& weight() const { return weight_; }
  // Bytes of weights a product reads (low-bit: planes and scales).
  int64_t weight_bytes() const {
    return low_bit() ? low_bit_.nbytes() : nm_packed_.defined() ? nm_.nbytes() : (int64_t)weight_.nbytes();
  }
  kernels::PackedMatrix packed() const;     // float form only
  kernels::QPackedMatrix qpacked() const;   // quantized form only
  // Floats of scratch apply() needs for M rows.
  int64_t scratch_floats(int64_t M) const;

  // Columns of the inputs the quantized kernels read: in_features() rounded up to the group.
  // Low-bit: the planes' padded width.
  int64_t packed_in() const { return quantized_ ? q_.K : low_bit() ? low_bit_.padded_in : in_; }
  // Quantized with integer inputs only: the product of inputs quantized already by their producer
  // as activation_quant() says (A.K == packed_in(), padding columns zero; A.bits its bits).
  void apply_quantized(const kernels::QuantizedRows& A, float* Y, int64_t ldy, kernels::Epilogue e) const;
  // As apply_quantized with the GELU epilogue, whose output H [M, ldh] is also quantized for `next`,
  // the quantized product it feeds, as next.activation_quant() says (int8, or int4 codes two per
  // byte): rows of next.packed_in() columns at q (row stride packed_in() or packed_in() / 2 bytes),
  // scales [M] and, int4 asymmetric, zeros [M]. ZeroQuant's fusion (kernels::quant_matmul_gelu_int8,
  // kernels::quant_matmul_gelu_int4), padding columns value 0. Returns those rows as next's inputs.
  kernels::QuantizedRows apply_quantized_gelu(const kernels::QuantizedRows& A, float* H, int64_t ldh,
                                              const LinearWeight& next, int8_t* q, float* scales,
                                              uint8_t* zeros) const;

  // Y[m, :] = epilogue(X[m, :] W^T + b) for m < M. Y must not alias X.
  void apply(const float* X, int64_t ldx, int64_t M, float* Y, int64_t ldy, kernels::Epilogue e,
             float* scratch) const;

 private:
  Tensor weight_, bias_;
  int64_t out_ = 0, in_ = 0;
  bool quantized_ = false;
  kernels::QPackedMatrix q_{};  // shape of the quantized form (data = weight_)
  io::ActivationQuant act_{};
  io::LowBitTensor low_bit_ = no_low_bit();  // the low-bit form (bits 0: another form)
  io::NmSparseTensor nm_;                     // the N:M form (values undefined: another form)
  Tensor nm_packed_;                          // its vector layout (undefined: weight_ and q_ hold it dense)
  kernels::NmSparsePacked nm_view_{};
  // Bytes (as floats) of scratch quantize_inputs needs for M rows of Kp columns.
  static int64_t input_scratch_floats(int64_t M, int64_t Kp);
  // X's M rows quantized as act_ says, padded to Kp columns, into scratch: row scales, zero points
  // (int4 asymmetric), then the int8 values or int4 codes.
  kernels::QuantizedRows quantize_inputs(const float* X, int64_t ldx, int64_t M, int64_t Kp, float* scratch) const;
  void apply_nm_sparse(const float* X, int64_t ldx, int64_t M, float* Y, int64_t ldy, kernels::Epilogue e,
                       float* scratch) const;
  static io::LowBitTensor no_low_bit() {
    io::LowBitTensor t;
    t.bits = 0;
    return t;
  }
};

}  // namespace gannet::infer
