#include "gannet/infer/linear_weight.h"

#include "gannet/kernels/quantize_rows_int4.h"
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "gannet/core/dtype.h"
#include "gannet/kernels/bias.h"
#include "gannet/kernels/gelu.h"
#include "gannet/kernels/gemm.h"
#include "gannet/kernels/low_bit_matmul.h"
#include "gannet/kernels/quantize_rows.h"
#include "gannet/kernels/quantize_rows_int4.h"

namespace gannet::infer {

namespace {
// Throws naming `what` unless the input quantization is one the integer products take.
void check_inputs(const io::ActivationQuant& a, const char* what) {
  if (!a.quantized) return;
  GANNET_CHECK(a.bits == 8 || a.bits == 4, what, ": ", a.bits, "-bit inputs (the products take 8 or 4)");
  GANNET_CHECK(!a.asymmetric || a.bits == 4, what, ": asymmetric inputs are int4 only");
  GANNET_CHECK(!(a.asymmetric && a.static_scale > 0.f), what, ": asymmetric inputs are token-wise (no static scale)");
}

kernels::PackedType packed_type(DType t) {
  GANNET_CHECK(t == DType::f32 || t == DType::bf16, "LinearWeight: weight dtype ", dtype_name(t),
               " is not supported (f32, bf16)");
  return t == DType::f32 ? kernels::PackedType::f32 : kernels::PackedType::bf16;
}
// Every low-bit product of the engine goes through here: Y [M, ldy] = A W^T (no bias), on the
// best vector path and the OpenMP threads (kernels/low_bit_matmul.h).
void low_bit_product(const kernels::QuantizedRows& A, const kernels::LowBitWeights& W, float* Y, int64_t ldy) {
  kernels::check_low_bit_product(A, W, "LinearWeight low-bit product");
  kernels::low_bit_matmul(A, W, Y, ldy);
}

// Y = epilogue(P + b) from the product P: in place when P is Y (store, gelu), added when accumulating.
void finish_rows(const float* P, int64_t ldp, const float* b, int64_t M, int64_t N, float* Y, int64_t ldy,
                 kernels::Epilogue e) {
  if (e != kernels::Epilogue::accumulate && ldy == N) {  // contiguous rows, in place: one threaded pass each
    if (b) kernels::add_bias(Y, b, M, N);
    if (e == kernels::Epilogue::gelu) kernels::gelu_forward(Y, Y, M * N);
    return;
  }
#pragma omp parallel for schedule(static) if (M * N >= (1 << 15))
  for (int64_t m = 0; m < M; ++m) {
    float* y = Y + m * ldy;
    const float* p = P + m * ldp;
    if (e == kernels::Epilogue::accumulate) {
      for (int64_t n = 0; n < N; ++n) y[n] += b ? p[n] + b[n] : p[n];
      continue;
    }
    if (b) kernels::add_bias(y, b, 1, N);
    if (e == kernels::Epilogue::gelu) kernels::gelu_forward(y, y, N);
  }
}
}  // namespace

LinearWeight::LinearWeight(const io::LowBitTensor& w, Tensor bias)
    : bias_(std::move(bias)), out_(w.rows), in_(w.in), low_bit_(w) {
  w.validate("LinearWeight low-bit weight");
  if (bias_.defined()) check_shape(bias_, {out_}, "LinearWeight bias");
}

LinearWeight::LinearWeight(const io::NmSparseTensor& w, Tensor bias, io::ActivationQuant inputs)
    : bias_(std::move(bias)), out_(w.rows), in_(w.in), act_(inputs), nm_(w) {
  w.validate("LinearWeight N:M sparse weight");
  GANNET_CHECK(inputs.quantized, "LinearWeight N:M sparse weight: the sparse kernels take integer inputs");
  check_inputs(inputs, "LinearWeight N:M sparse weight");
  if (bias_.defined()) check_shape(bias_, {out_}, "LinearWeight bias");
  const kernels::NmSparseWeights view = w.view();
  if (kernels::nm_sparse_packable(view)) {
    nm_packed_ = Tensor::empty({kernels::nm_sparse_packed_bytes(view)}, DType::u8);
    nm_view_ = kernels::pack_nm_sparse(view, nm_packed_.raw());
    return;
  }
  // No sparse vector path for this pattern or width: the dense int8 matrix holding the same integers
  // (zeros where nothing is kept) and scales, whose W8A8 product is bitwise the sparse reference's.
  io::QuantizedTensor dense;
  dense.bits = 8;
  dense.rows = w.rows;
  dense.in = dense.padded_in = w.in;
  dense.group = w.group;
  dense.q = Tensor::zeros({w.rows, w.in}, DType::i8);
  dense.scale = w.scale;
  int8_t* q = dense.q.data<int8_t>();
  for (int64_t r = 0; r < w.rows; ++r)
    for (int64_t j = 0; j < view.kept_per_row(); ++j) q[r * w.in + view.column(r, j)] = (int8_t)view.value(r, j);
  weight_ = Tensor::empty({kernels::qpacked_bytes(dense.view())}, DType::u8);
  kernels::pack_quantized(dense.view(), weight_.raw());
  q_ = kernels::qpacked_view(dense.view(), weight_.raw());
}

LinearWeight::LinearWeight(Tensor weight, int64_t out, int64_t in, Tensor bias)
    : weight_(std::move(weight)), bias_(std::move(bias)), out_(out), in_(in) {
  check_shape(weight_, {kernels::packed_size(packed_type(weight_.dtype()), out, in)}, "LinearWeight packed weight");
  if (bias_.defined()) check_shape(bias_, {out}, "LinearWeight bias");
}

LinearWeight::LinearWeight(Tensor packed, const io::QuantizedTensor& q, Tensor bias, io::ActivationQuant act)
    : weight_(std::move(packed)), bias_(std::move(bias)), out_(q.rows), in_(q.in), quantized_(true), act_(act) {
  const kernels::QuantizedWeights view = q.view();
  GANNET_CHECK(weight_.dtype() == DType::u8 && (int64_t)weight_.nbytes() == kernels::qpacked_bytes(view),
               "LinearWeight: packed quantized weight of ", weight_.describe(), ", expected ",
               kernels::qpacked_bytes(view), " bytes");
  q_ = kernels::qpacked_view(view, weight_.raw());
  if (bias_.defined()) check_shape(bias_, {out_}, "LinearWeight bias");
  check_inputs(act_, "LinearWeight");
}

LinearWeight LinearWeight::relocated(const std::function<Tensor(const Tensor&)>& move) const {
  GANNET_CHECK(!low_bit() && !nm_sparse(), "LinearWeight: low-bit and N:M weights cannot be relocated");
  LinearWeight y = *this;
  y.weight_ = move(weight_);
  y.bias_ = move(bias_);
  if (quantized_) y.q_.data = y.weight_.raw();
  return y;
}

kernels::PackedMatrix LinearWeight::packed() const {
  GANNET_CHECK(!quantized_ && !low_bit() && !nm_sparse(), "LinearWeight: a quantized weight has no float packing");
  return {packed_type(weight_.dtype()), weight_.raw(), out_, in_};
}

kernels::QPackedMatrix LinearWeight::qpacked() const {
  GANNET_CHECK(quantized_, "LinearWeight: not a quantized weight");
  return q_;
}

std::string LinearWeight::describe() const {
  if (low_bit())
    return str(low_bit_.ternary() ? "ternary" : "binary",
               low_bit_.group == low_bit_.padded_in ? std::string(" per-row") : str(" g", low_bit_.group), " / a8");
  const std::string inputs = !act_.quantized ? " / f32"
                             : str(" / a", act_.bits, act_.asymmetric ? " asym" : "",
                                   act_.static_scale > 0 ? " static" : "");
  if (nm_sparse())
    return str(nm_.n, ":", nm_.m, " int", nm_.bits, nm_.group == nm_.in ? std::string(" per-row") : str(" g", nm_.group),
               inputs);
  if (!quantized_) return dtype_name(weight_.dtype());
  return str("int", q_.bits, q_.group == q_.K ? std::string(" per-row") : str(" g", q_.group),
             q_.asymmetric ? " asym" : "", inputs);
}

void LinearWeight::row(int64_t n, float* out) const {
  if (low_bit()) {
    GANNET_CHECK(n >= 0 && n < out_, "LinearWeight::row: row ", n, " outside [0, ", out_, ")");
    const kernels::LowBitWeights w = low_bit_.view();
    for (int64_t k = 0; k < in_; ++k) out[k] = w.dequantized(n, k);
    return;
  }
  if (nm_sparse()) {
    GANNET_CHECK(n >= 0 && n < out_, "LinearWeight::row: row ", n, " outside [0, ", out_, ")");
    const kernels::NmSparseWeights w = nm_.view();
    std::fill(out, out + in_, 0.f);
    for (int64_t j = 0; j < w.kept_per_row(); ++j) out[w.column(n, j)] = w.dequantized(n, j);
    return;
  }
  if (!quantized_) return kernels::unpack_rows(packed(), n, 1, out);
  if (q_.K == in_) return kernels::unpack_quantized_rows(q_, n, 1, out);
  std::vector<float> padded(q_.K);
  kernels::unpack_quantized_rows(q_, n, 1, padded.data());
  std::memcpy(out, padded.data(), in_ * sizeof(float));
}

void LinearWeight::apply_quantized(const kernels::QuantizedRows& A, float* Y, int64_t ldy, kernels::Epilogue e) const {
  GANNET_CHECK(quantized_ && act_.quantized && A.bits == act_.bits && (A.zero != nullptr) == act_.asymmetric,
               "LinearWeight::apply_quantized: needs a quantized weight whose inputs are quantized as A is (", A.bits,
               "-bit", A.zero ? " asymmetric" : "", ")");
  kernels::quant_matmul(A, q_, bias_.defined() ? bias_.f32() : nullptr, Y, ldy, e);
}

kernels::QuantizedRows LinearWeight::apply_quantized_gelu(const kernels::QuantizedRows& A, float* H, int64_t ldh,
                                                          const LinearWeight& next, int8_t* q, float* scales,
                                                          uint8_t* zeros) const {
  const io::ActivationQuant& a = next.act_;
  GANNET_CHECK(quantized_ && act_.quantized && next.quantized_ && a.quantized && next.in_ == out_,
               "LinearWeight::apply_quantized_gelu: needs two quantized products with quantized inputs, the second "
               "taking the first's outputs");
  const float* b = bias_.defined() ? bias_.f32() : nullptr;
  const int64_t Kp = next.packed_in(), M = A.M;
  if (a.bits == 8) {
    kernels::quant_matmul_gelu_int8(A, q_, b, H, ldh, a.static_scale, q, Kp, scales);
    if (Kp > out_)
      for (int64_t m = 0; m < M; ++m) std::memset(q + m * Kp + out_, 0, Kp - out_);
    return {q, Kp, scales, M, Kp};
  }
  uint8_t* z = a.asymmetric ? zeros : nullptr;
  kernels::quant_matmul_gelu_int4(A, q_, b, H, ldh, Kp, a.asymmetric, a.static_scale, reinterpret_cast<uint8_t*>(q),
                                  Kp / 2, scales, z);
  return {q, Kp / 2, scales, M, Kp, 4, z};
}

int64_t LinearWeight::scratch_floats(int64_t M) const {
  // Low-bit: the int8 inputs and their scales, and the product's rows when it is accumulated.
  if (low_bit()) return (M * low_bit_.padded_in + 3) / 4 + M + 16 + M * out_;
  // N:M: the quantized inputs (int4 ones widened to int8 too) and the product's rows.
  if (nm_sparse()) return input_scratch_floats(M, in_) + (act_.bits == 4 ? (M * in_ + 3) / 4 : 0) + M * out_;
  if (quantized_) {
    // Inputs padded to the packed width (f32), or their integer form, row scales and zero points.
    const int64_t Kp = q_.K;
    if (act_.quantized) return input_scratch_floats(M, Kp);
    return Kp == in_ ? 0 : M * Kp;
  }
  if (M <= kSkinnyMaxRows) return 0;
  return std::min(kWidenRows, out_features()) * in_features();
}

void LinearWeight::apply(const float* X, int64_t ldx, int64_t M, float* Y, int64_t ldy, kernels::Epilogue e,
                         float* scratch) const {
  const int64_t N = out_features(), K = in_features();
  const float* b = bias_.defined() ? bias_.f32() : nullptr;
  if (low_bit()) {
    GANNET_CHECK(scratch != nullptr, "LinearWeight::apply: the low-bit path needs scratch");
    const int64_t Kp = low_bit_.padded_in;
    float* scales = scratch;
    int8_t* q = reinterpret_cast<int8_t*>(scratch + M + 16);
    float* product = scratch + M + 16 + (M * Kp + 3) / 4;
    kernels::quantize_rows(X, ldx, M, K, 0.f, q, Kp, scales);
    const kernels::QuantizedRows A{q, Kp, scales, M, K};
    const bool in_place = e != kernels::Epilogue::accumulate;
    low_bit_product(A, low_bit_.view(), in_place ? Y : product, in_place ? ldy : N);
    return finish_rows(in_place ? Y : product, in_place ? ldy : N, b, M, N, Y, ldy, e);
  }
  if (nm_sparse()) return apply_nm_sparse(X, ldx, M, Y, ldy, e, scratch);
  if (quantized_) {
    const int64_t Kp = q_.K;
    GANNET_CHECK(scratch != nullptr || scratch_floats(M) == 0, "LinearWeight::apply: the quantized path needs scratch");
    if (act_.quantized) return kernels::quant_matmul(quantize_inputs(X, ldx, M, Kp, scratch), q_, b, Y, ldy, e);
    if (Kp == K) return kernels::quant_matmul_f32(X, ldx, M, q_, b, Y, ldy, e);
    for (int64_t m = 0; m < M; ++m) {
      std::memcpy(scratch + m * Kp, X + m * ldx, K * sizeof(float));
      std::fill(scratch + m * Kp + K, scratch + (m + 1) * Kp, 0.f);
    }
    return kernels::quant_matmul_f32(scratch, Kp, M, q_, b, Y, ldy, e);
  }
  if (M <= kSkinnyMaxRows) return kernels::skinny_matmul(X, ldx, M, packed(), b, Y, ldy, e);
  // GEMM path: Y (+)= X W^T on unpacked blocks of rows, then bias and GELU over the rows.
  GANNET_CHECK(scratch != nullptr, "LinearWeight::apply: the GEMM path needs scratch");
  const float beta = e == kernels::Epilogue::accumulate ? 1.f : 0.f;
  for (int64_t n0 = 0; n0 < N; n0 += kWidenRows) {
    const int64_t rows = std::min(kWidenRows, N - n0);
    kernels::unpack_rows(packed(), n0, rows, scratch);
    kernels::gemm(false, true, M, rows, K, 1.f, X, ldx, scratch, K, beta, Y + n0, ldy);
  }
  if (ldy == N) {  // contiguous rows: one pass each
    if (b) kernels::add_bias(Y, b, M, N);
    if (e == kernels::Epilogue::gelu) kernels::gelu_forward(Y, Y, M * N);
    return;
  }
  for (int64_t m = 0; m < M; ++m) {
    float* y = Y + m * ldy;
    if (b) kernels::add_bias(y, b, 1, N);
    if (e == kernels::Epilogue::gelu) kernels::gelu_forward(y, y, N);
  }
}

int64_t LinearWeight::input_scratch_floats(int64_t M, int64_t Kp) { return M + 16 + (M + 3) / 4 + (M * Kp + 3) / 4; }

kernels::QuantizedRows LinearWeight::quantize_inputs(const float* X, int64_t ldx, int64_t M, int64_t Kp,
                                                     float* scratch) const {
  const int64_t K = in_;
  float* scales = scratch;
  uint8_t* zeros = reinterpret_cast<uint8_t*>(scratch + M + 16);
  int8_t* q = reinterpret_cast<int8_t*>(scratch + M + 16 + (M + 3) / 4);
  if (act_.bits == 4) {
    kernels::quantize_rows_int4(X, ldx, M, K, Kp, act_.asymmetric, act_.static_scale, reinterpret_cast<uint8_t*>(q),
                                Kp / 2, scales, act_.asymmetric ? zeros : nullptr);
    return {q, Kp / 2, scales, M, Kp, 4, act_.asymmetric ? zeros : nullptr};
  }
  kernels::quantize_rows(X, ldx, M, K, act_.static_scale, q, Kp, scales);
  if (Kp > K)
    for (int64_t m = 0; m < M; ++m) std::memset(q + m * Kp + K, 0, Kp - K);
  return {q, Kp, scales, M, Kp};
}

// Inputs quantized token-wise, then the sparse product, or the dense int8 one on the same integers
// for patterns without a sparse vector path (bias added in it).
void LinearWeight::apply_nm_sparse(const float* X, int64_t ldx, int64_t M, float* Y, int64_t ldy,
                                   kernels::Epilogue e, float* scratch) const {
  GANNET_CHECK(scratch != nullptr, "LinearWeight::apply: the N:M sparse path needs scratch");
  const int64_t N = out_, K = in_;
  kernels::QuantizedRows A = quantize_inputs(X, ldx, M, K, scratch);
  float* product = scratch + input_scratch_floats(M, K);
  if (A.bits == 4) {  // the sparse kernels read int8 rows: the values c - z widened
    int8_t* wide = reinterpret_cast<int8_t*>(product);
    kernels::widen_int4_rows(A, 0, M, wide, K);
    A = kernels::QuantizedRows{wide, K, A.scale, M, K};
    product += (M * K + 3) / 4;
  }
  const bool in_place = e != kernels::Epilogue::accumulate;
  const float* b = bias_.defined() ? bias_.f32() : nullptr;
  float* out = in_place ? Y : product;
  const int64_t ldo = in_place ? ldy : N;
  if (nm_packed_.defined()) kernels::nm_sparse_matmul(A, nm_view_, nm_.view(), b, out, ldo);
  else kernels::quant_matmul(A, q_, b, out, ldo, kernels::Epilogue::store);
  finish_rows(out, ldo, nullptr, M, N, Y, ldy, e);
}

}  // namespace gannet::infer
