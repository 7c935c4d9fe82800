// The classifier encoder's inference engine (infer/encoder_engine.h) in its weight forms, and the
// low-bit and N:M sparse forms of infer::LinearWeight.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "gannet/compress/low_bit_encoder_pack.h"
#include "gannet/compress/nm_encoder_pack.h"
#include "gannet/compress/nm_sparse_quantizer.h"
#include "gannet/compress/simulated_quant.h"
#include "gannet/kernels/nm_sparse_matmul.h"
#include "gannet/infer/encoder_engine.h"
#include "gannet/kernels/gelu.h"
#include "gannet/kernels/low_bit_matmul.h"
#include "gannet/kernels/quantize_rows.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
using compress::LowBitSpec;

namespace {

models::EncoderConfig tiny_config() {
  models::EncoderConfig c;
  c.vocab_size = 37;
  c.n_ctx = 12;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 48;
  c.num_classes = 3;
  return c;
}

// Weights large enough that the logits are O(1) and depend on every part of the model.
models::Encoder random_model(uint32_t seed, const models::EncoderConfig& c = tiny_config()) {
  models::Encoder m(c);
  m.init(seed);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 0.15f);
  for (const nn::Parameter& p : m.parameters()) {
    Tensor& v = p.var.value();
    const bool gain = p.name.find("ln_") != std::string::npos && p.name.ends_with(".weight");
    for (int64_t i = 0; i < v.numel(); ++i) v.f32()[i] = (gain ? 1.f : 0.f) + normal(rng);
  }
  return m;
}

struct Batch {
  Tensor tokens, mask;
};

// B sequences of T tokens; sequence b has its padding at random places, sequence 1 none, and the
// last one no real token at all.
Batch random_batch(int64_t B, int64_t T, uint32_t seed) {
  std::mt19937 rng(seed);
  Batch x{Tensor::empty({B, T}, DType::i32), Tensor::empty({B, T}, DType::u8)};
  for (int64_t i = 0; i < B * T; ++i) {
    x.tokens.data<int32_t>()[i] = (int32_t)(rng() % 37);
    const int64_t b = i / T;
    x.mask.data<uint8_t>()[i] = b == B - 1 ? 0 : b == 1 ? 1 : (rng() % 4 != 0);
  }
  return x;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double d = 0;
  for (int64_t i = 0; i < a.numel(); ++i) d = std::max(d, (double)std::fabs(a.f32()[i] - b.f32()[i]));
  return d;
}

double max_abs(const Tensor& a) {
  double d = 0;
  for (int64_t i = 0; i < a.numel(); ++i) d = std::max(d, (double)std::fabs(a.f32()[i]));
  return d;
}

TEST(EncoderEngine, F32MatchesTheTrainingModel) {
  const models::Encoder m = random_model(3);
  infer::EncoderEngine e = infer::EncoderEngine::f32(m);
  for (const auto& [B, T] : {std::pair{5, 12}, std::pair{3, 7}, std::pair{40, 12}}) {
    const Batch x = random_batch(B, T, (uint32_t)(B * 100 + T));
    const Tensor want = m.logits(x.tokens, x.mask).value();
    const Tensor got = e.logits(x.tokens, x.mask);
    ASSERT_GT(max_abs(want), 0.3);
    EXPECT_LT(max_abs_diff(got, want), 2e-5 * std::max(1.0, max_abs(want))) << B << "x" << T;
    // A sequence without a real token: the classifier's bias.
    for (int64_t k = 0; k < 3; ++k)
      EXPECT_EQ(got.f32()[(B - 1) * 3 + k], m.parameters().back().var.value().f32()[k]);
  }
}

// The model with its low-bit weights replaced by their dequantized values.
models::Encoder dequantized(const models::Encoder& m, const io::LowBitEncoder& p) {
  models::Encoder d(m.config());
  for (size_t i = 0; i < m.parameters().size(); ++i) {
    const nn::Parameter& src = m.parameters()[i];
    Tensor& dst = d.parameters()[i].var.value();
    auto it = p.low_bit.find(src.name);
    const Tensor v = it == p.low_bit.end() ? src.var.value() : it->second.dequantize();
    std::memcpy(dst.raw(), v.raw(), v.nbytes());
  }
  return d;
}

TEST(EncoderEngine, LowBitMatchesF32OnTheDequantizedWeightsWithInt8Inputs) {
  const models::Encoder m = random_model(5);
  const Batch x = random_batch(6, 12, 9);
  for (const auto& [scheme, spec] : {std::pair{"w1a8", LowBitSpec{1, 32}}, std::pair{"w2a8", LowBitSpec{2, 0}},
                                     std::pair{"w2a8", LowBitSpec{2, 64}}}) {
    const io::LowBitEncoder p = compress::pack_low_bit_encoder(m, spec, {spec.bits, 0}, scheme);
    infer::EncoderEngine low = infer::EncoderEngine::low_bit(p);
    const models::Encoder d = dequantized(m, p);
    infer::EncoderEngine simulated = infer::EncoderEngine::f32(d, /*fake_int8_inputs=*/true);
    const Tensor got = low.logits(x.tokens, x.mask), want = simulated.logits(x.tokens, x.mask);
    const double scale = std::max(1.0, max_abs(want));
    EXPECT_LT(max_abs_diff(got, want), 2e-3 * scale) << scheme << " " << spec.describe();
    // Without the activation quantization the difference is of another order: the comparison sees it.
    const Tensor plain = infer::EncoderEngine::f32(d).logits(x.tokens, x.mask);
    EXPECT_GT(max_abs_diff(plain, want), 10 * max_abs_diff(got, want)) << scheme << " " << spec.describe();
    EXPECT_TRUE(has(low.describe(), spec.bits == 1 ? "binary" : "ternary")) << low.describe();
  }
}

TEST(EncoderEngine, W8A8IsCloseToF32AndEachFormReadsFewerBytes) {
  const models::Encoder m = random_model(7);
  const Batch x = random_batch(4, 12, 2);
  infer::EncoderEngine f = infer::EncoderEngine::f32(m), q = infer::EncoderEngine::quantized(m);
  const Tensor want = f.logits(x.tokens, x.mask), got = q.logits(x.tokens, x.mask);
  EXPECT_LT(max_abs_diff(got, want), 0.05 * std::max(1.0, max_abs(want)));
  EXPECT_GT(max_abs_diff(got, want), 0.0);
  EXPECT_EQ(q.describe(), "int8 per-row / a8");  // g64 over 48 columns: one group per row
  infer::EncoderEngine t = infer::EncoderEngine::low_bit(compress::pack_low_bit_encoder(m, {2, 0}, {2, 0}, "w2a8"));
  infer::EncoderEngine b = infer::EncoderEngine::low_bit(compress::pack_low_bit_encoder(m, {1, 0}, {1, 0}, "w1a8"));
  // Per layer: products 12 C^2 weights and 9 C biases, 4 C LayerNorm values; the classifier 3 (C + 1); ln_f 2 C.
  const int64_t C = 48, L = 2;
  // (The classifier's 3 rows are packed as 4: the float kernels' row blocks.)
  const int64_t f32_bytes = 4 * (L * (12 * C * C + 9 * C + 4 * C) + 4 * C + 3 + 2 * C);
  EXPECT_EQ(f.weight_bytes(), f32_bytes);
  EXPECT_LT(q.weight_bytes(), f32_bytes);
  EXPECT_LT(t.weight_bytes(), q.weight_bytes());
  EXPECT_LT(b.weight_bytes(), t.weight_bytes());
}

TEST(EncoderEngine, BadInputsAreRejected) {
  infer::EncoderEngine e = infer::EncoderEngine::f32(random_model(1));
  Batch x = random_batch(2, 12, 1);
  x.tokens.data<int32_t>()[5] = 37;
  EXPECT_TRUE(has(message_of([&] { e.logits(x.tokens, x.mask); }), "token id 37 at flat position 5"));
  const Batch y = random_batch(2, 13, 1);
  EXPECT_TRUE(has(message_of([&] { e.logits(y.tokens, y.mask); }), "13 tokens per sequence"));
  const Batch z = random_batch(2, 12, 1);
  EXPECT_TRUE(has(message_of([&] { e.logits(z.tokens, Tensor::zeros({2, 11}, DType::u8)); }), "mask must be u8"));
  EXPECT_TRUE(has(message_of([&] { e.logits(Tensor::zeros({2, 12}), z.mask); }), "tokens must be i32"));
}

// ---- LinearWeight's low-bit form ----

TEST(LowBitLinearWeight, ApplyIsTheReferenceProductBitwise) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (const LowBitSpec& spec : {LowBitSpec{1, 32}, LowBitSpec{2, 0}, LowBitSpec{1, 0}}) {
    const int64_t N = 40, K = 72;
    std::vector<float> w(N * K), bias(N);
    for (float& v : w) v = normal(rng);
    for (float& v : bias) v = normal(rng);
    const io::LowBitTensor t = compress::quantize_low_bit(w.data(), N, K, spec);
    const infer::LinearWeight plain(t, Tensor()), biased(t, Tensor::from_vector(bias, {N}));
    EXPECT_TRUE(plain.low_bit() && !plain.quantized());
    EXPECT_EQ(plain.weight_bytes(), t.nbytes());
    EXPECT_EQ(plain.packed_in(), t.padded_in);
    for (const auto& [M, ldy] : {std::pair<int64_t, int64_t>{1, N + 5}, {7, N + 5}, {70, N + 5}, {70, N}}) {
      const int64_t ldx = K + 3;
      std::vector<float> X(M * ldx), scratch(plain.scratch_floats(M));
      for (float& v : X) v = normal(rng);
      // The reference: token-wise int8 inputs, then ref::low_bit_matmul.
      std::vector<int8_t> q(M * t.padded_in, 0);
      std::vector<float> s(M), ref(M * ldy, 0.f);
      kernels::quantize_rows(X.data(), ldx, M, K, 0.f, q.data(), t.padded_in, s.data());
      kernels::ref::low_bit_matmul({q.data(), t.padded_in, s.data(), M, K}, t.view(), ref.data(), ldy);
      std::vector<float> Y(M * ldy, -7.f);
      plain.apply(X.data(), ldx, M, Y.data(), ldy, kernels::Epilogue::store, scratch.data());
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) ASSERT_EQ(Y[m * ldy + n], ref[m * ldy + n]) << m << "," << n;
      if (ldy > N) {
        EXPECT_EQ(Y[ldy - 1], -7.f);  // columns past N untouched
      }
      // Bias then GELU (over the whole block when it is contiguous, else row by row, as the
      // epilogue runs it); bias then accumulated.
      biased.apply(X.data(), ldx, M, Y.data(), ldy, kernels::Epilogue::gelu, scratch.data());
      std::vector<float> acc(M * ldy, 0.5f), Z(acc), g(ref);
      biased.apply(X.data(), ldx, M, Z.data(), ldy, kernels::Epilogue::accumulate, scratch.data());
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) g[m * ldy + n] += bias[n];
      if (ldy == N) kernels::gelu_forward(g.data(), g.data(), M * N);
      else
        for (int64_t m = 0; m < M; ++m) kernels::gelu_forward(g.data() + m * ldy, g.data() + m * ldy, N);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          ASSERT_EQ(Y[m * ldy + n], g[m * ldy + n]) << m << "," << n;
          ASSERT_EQ(Z[m * ldy + n], 0.5f + (ref[m * ldy + n] + bias[n])) << m << "," << n;
        }
    }
    // row(): the dequantized row.
    const Tensor d = t.dequantize();
    std::vector<float> r(K);
    plain.row(13, r.data());
    EXPECT_EQ(std::memcmp(r.data(), d.f32() + 13 * K, K * sizeof(float)), 0);
  }
}

// Every N:M (and dense) product form of a packed NxMiFormer encoder against the f32 engine on the
// same dequantized weights with int8 inputs: only the summation order differs.
TEST(EncoderEngine, NmSparseMatchesF32OnTheDequantizedWeightsWithInt8Inputs) {
  models::EncoderConfig c = tiny_config();
  c.n_embd = 64;
  models::Encoder m = random_model(4, c);
  std::vector<std::array<compress::NmProductForm, 4>> forms(2);
  const std::pair<const char*, compress::WeightQuantSpec> picks[8] = {
      {"2:4", {8, 0}}, {"1:4", {4, 32}}, {"dense", {8, 64}}, {"1:4", {8, 64}},
      {"2:8", {8, 0}}, {"dense", {4, 32}}, {"2:4", {4, 64}}, {"2:4", {8, 32}}};
  std::map<std::string, Tensor> masks;
  for (int i = 0; i < 8; ++i) {
    compress::NmProductForm& f = forms[(size_t)i / 4][(size_t)i % 4];
    f.quant = picks[i].second;
    if (std::string(picks[i].first) != "dense") f.pattern = NmPattern::parse(picks[i].first, "test");
    const std::string product = "h." + std::to_string(i / 4) + "." + compress::kBlockProducts[(size_t)i % 4];
    for (const nn::Parameter& p : m.parameters())
      if (p.name == product + ".weight") masks.emplace(product, Tensor::full(p.var.value().shape(), 1.f));
  }
  const io::NmSparseEncoder packed = compress::pack_nm_sparse_encoder(m, forms, masks);
  EXPECT_EQ(packed.sparse.size(), 6u);
  EXPECT_EQ(packed.quantized.size(), 2u);
  models::Encoder d(c);
  for (size_t i = 0; i < m.parameters().size(); ++i) {
    const nn::Parameter& src = m.parameters()[i];
    const Tensor v = packed.sparse.count(src.name)      ? packed.sparse.at(src.name).dequantize()
                     : packed.quantized.count(src.name) ? packed.quantized.at(src.name).dequantize()
                                                        : src.var.value();
    std::memcpy(d.parameters()[i].var.value().raw(), v.raw(), v.nbytes());
  }
  const Batch x = random_batch(6, 12, 3);
  infer::EncoderEngine nm = infer::EncoderEngine::nm_sparse(packed);
  const Tensor got = nm.logits(x.tokens, x.mask);
  const Tensor want = infer::EncoderEngine::f32(d, /*fake_int8_inputs=*/true).logits(x.tokens, x.mask);
  const double scale = std::max(1.0, max_abs(want));
  EXPECT_LT(max_abs_diff(got, want), 2e-3 * scale);
  const Tensor plain = infer::EncoderEngine::f32(d).logits(x.tokens, x.mask);
  EXPECT_GT(max_abs_diff(plain, want), 10 * max_abs_diff(got, want));
  EXPECT_EQ(nm.describe(), "2:4 int8 per-row / a8");
  EXPECT_LT(nm.weight_bytes(), infer::EncoderEngine::quantized(m).weight_bytes());
}

TEST(NmSparseLinearWeight, ApplyIsTheReferenceProductBitwise) {
  std::mt19937 rng(12);
  std::normal_distribution<float> normal(0.f, 1.f);
  const compress::NmSparseSpec specs[] = {{{2, 4}, 8, 64}, {{1, 4}, 8, 0}, {{2, 4}, 4, 32}, {{3, 8}, 8, 64}};
  for (const compress::NmSparseSpec& spec : specs) {
    const int64_t N = 40, K = 128;
    std::vector<float> w(N * K), bias(N);
    for (float& v : w) v = normal(rng);
    for (float& v : bias) v = normal(rng);
    const io::NmSparseTensor t = compress::quantize_nm_sparse(w.data(), N, K, spec);
    const infer::LinearWeight plain(t, Tensor()), biased(t, Tensor::from_vector(bias, {N}));
    EXPECT_TRUE(plain.nm_sparse() && !plain.quantized() && !plain.low_bit());
    // The packed sparse form reads the stored bytes; others run dense int8 (N K bytes and the scales).
    if (kernels::nm_sparse_packable(t.view())) EXPECT_EQ(plain.weight_bytes(), t.nbytes()) << spec.describe();
    else EXPECT_GE(plain.weight_bytes(), N * K) << spec.describe();
    for (const auto& [M, ldy] : {std::pair<int64_t, int64_t>{1, N + 5}, {7, N + 5}, {70, N}}) {
      const int64_t ldx = K + 3;
      std::vector<float> X(M * ldx), scratch(plain.scratch_floats(M));
      for (float& v : X) v = normal(rng);
      std::vector<int8_t> q(M * K);
      std::vector<float> s(M), ref(M * ldy, 0.f), ref_b(M * ldy, 0.f);
      kernels::quantize_rows(X.data(), ldx, M, K, 0.f, q.data(), K, s.data());
      const kernels::QuantizedRows A{q.data(), K, s.data(), M, K};
      kernels::ref::nm_sparse_matmul(A, t.view(), nullptr, ref.data(), ldy);
      kernels::ref::nm_sparse_matmul(A, t.view(), bias.data(), ref_b.data(), ldy);
      std::vector<float> Y(M * ldy, -7.f), Z(M * ldy, 0.5f);
      plain.apply(X.data(), ldx, M, Y.data(), ldy, kernels::Epilogue::store, scratch.data());
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) ASSERT_EQ(Y[m * ldy + n], ref[m * ldy + n]) << spec.describe() << " " << m;
      if (ldy > N) {
        EXPECT_EQ(Y[ldy - 1], -7.f);
      }
      biased.apply(X.data(), ldx, M, Y.data(), ldy, kernels::Epilogue::gelu, scratch.data());
      biased.apply(X.data(), ldx, M, Z.data(), ldy, kernels::Epilogue::accumulate, scratch.data());
      for (int64_t m = 0; m < M; ++m) {
        std::vector<float> g(ref_b.begin() + m * ldy, ref_b.begin() + m * ldy + N);
        kernels::gelu_forward(g.data(), g.data(), N);
        for (int64_t n = 0; n < N; ++n) {
          ASSERT_EQ(Y[m * ldy + n], g[(size_t)n]) << spec.describe() << " " << m << "," << n;
          ASSERT_EQ(Z[m * ldy + n], 0.5f + ref_b[m * ldy + n]) << spec.describe() << " " << m << "," << n;
        }
      }
    }
    const Tensor d = t.dequantize();
    std::vector<float> r(K);
    plain.row(13, r.data());
    EXPECT_EQ(std::memcmp(r.data(), d.f32() + 13 * K, K * sizeof(float)), 0);
  }
}

}  // namespace

// W4A4 (the INT4 paper's encoder pipeline): int4 weights and int4 token-wise inputs, symmetric and
// asymmetric, dense and 2:4, run packed, against the f32 engine on the dequantized weights with
// the same inputs quantized to int4 and back in f32.
TEST(EncoderEngine, W4A4MatchesF32OnTheDequantizedWeightsWithInt4Inputs) {
  models::EncoderConfig c = tiny_config();
  c.n_embd = 64;
  for (bool asym : {false, true})
    for (bool sparse : {false, true}) {
      models::Encoder src = random_model(5, c);
      const io::ActivationQuant a4{true, 0.f, 4, asym};
      std::vector<std::array<compress::NmProductForm, 4>> forms(2);
      std::map<std::string, Tensor> masks;
      for (int i = 0; i < 8; ++i) {
        compress::NmProductForm& f = forms[(size_t)i / 4][(size_t)i % 4];
        f.quant = {4, 32};
        f.input = a4;
        if (sparse) f.pattern = NmPattern::parse("2:4", "test");
        const std::string product = "h." + std::to_string(i / 4) + "." + compress::kBlockProducts[(size_t)i % 4];
        for (const nn::Parameter& p : src.parameters())
          if (p.name == product + ".weight") masks.emplace(product, Tensor::full(p.var.value().shape(), 1.f));
      }
      const io::NmSparseEncoder packed = compress::pack_nm_sparse_encoder(src, forms, masks);
      EXPECT_EQ(packed.inputs.size(), 8u);
      models::Encoder d(c);
      for (size_t i = 0; i < src.parameters().size(); ++i) {
        const nn::Parameter& p = src.parameters()[i];
        const Tensor v = packed.sparse.count(p.name)      ? packed.sparse.at(p.name).dequantize()
                         : packed.quantized.count(p.name) ? packed.quantized.at(p.name).dequantize()
                                                          : p.var.value();
        std::memcpy(d.parameters()[i].var.value().raw(), v.raw(), v.nbytes());
      }
      const Batch x = random_batch(6, 12, 3);
      infer::EncoderEngine w4a4 = infer::EncoderEngine::nm_sparse(packed);
      const Tensor got = w4a4.logits(x.tokens, x.mask);
      const Tensor want = infer::EncoderEngine::f32(d, a4).logits(x.tokens, x.mask);
      const double scale = std::max(1.0, max_abs(want));
      const std::string what = std::string(asym ? "asymmetric" : "symmetric") + (sparse ? " 2:4" : " dense");
      EXPECT_LT(max_abs_diff(got, want), 2e-3 * scale) << what;
      // The int4 inputs matter: the same weights with int8 inputs give other logits.
      const Tensor a8 = infer::EncoderEngine::f32(d, /*fake_int8_inputs=*/true).logits(x.tokens, x.mask);
      EXPECT_GT(max_abs_diff(a8, want), 10 * max_abs_diff(got, want)) << what;
      EXPECT_EQ(w4a4.describe(), std::string(sparse ? "2:4 int4 g32" : "int4 g32") + " / a4" + (asym ? " asym" : ""));
      // Post-training W4A4 from the f32 model: the same numbers as the packed dense form.
      if (!sparse) {
        const Tensor ptq = infer::EncoderEngine::quantized(src, {4, 32}, a4).logits(x.tokens, x.mask);
        EXPECT_EQ(max_abs_diff(ptq, got), 0.0) << what;
      }
    }
}

// ZeroQuant's fusion in the encoder engine (the LayerNorms and c_fc's GELU quantize the next
// product's inputs): bitwise the logits of the unfused engine, where each product quantizes its
// f32 input itself, for int8 and int4 (symmetric, asymmetric) inputs, with padded inputs (d 48,
// groups of 32) and not (d 64).
TEST(EncoderEngine, FusedInputQuantizationIsBitwiseTheUnfused) {
  for (int64_t d : {48, 64})
    for (const io::ActivationQuant& a : {io::ActivationQuant{true}, io::ActivationQuant{true, 0.f, 4, false},
                                         io::ActivationQuant{true, 0.f, 4, true}}) {
      models::EncoderConfig c = tiny_config();
      c.n_embd = d;
      const models::Encoder src = random_model(7, c);
      compress::WeightQuantSpec spec;
      spec.bits = a.bits;
      spec.group = 32;
      infer::EncoderEngine fused = infer::EncoderEngine::quantized(src, spec, a);
      infer::EncoderEngine plain = infer::EncoderEngine::quantized(src, spec, a);
      fused.set_fused_input_quantization(true);
      const Batch x = random_batch(9, 12, 4);  // 9 sequences: the products' tiled paths too
      const Tensor got = fused.logits(x.tokens, x.mask), want = plain.logits(x.tokens, x.mask);
      EXPECT_EQ(std::memcmp(got.raw(), want.raw(), want.nbytes()), 0) << "d " << d << " a" << a.bits
                                                                       << (a.asymmetric ? " asym" : "");
      EXPECT_GT(max_abs(want), 0.0);
    }
}
