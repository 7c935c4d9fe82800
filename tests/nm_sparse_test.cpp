// The N:M sparse quantized form (compress/nm_sparse_quantizer.h, io/nm_sparse_tensor.h) and its
// reference product (kernels/nm_sparse_matmul.h): the stored integers and scales are those of
// ZeroQuant's quantizer on the projected matrix, and the product equals ZeroQuant's W8A8 / W4A8
// product of that dense matrix bitwise.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <random>
#include <vector>

#include <functional>

#include "gannet/compress/nm_encoder_pack.h"
#include "gannet/compress/nm_sparse_quantizer.h"
#include "gannet/compress/quantizer.h"
#include "gannet/core/cpu.h"
#include "gannet/io/encoder_checkpoint.h"
#include "gannet/io/json_config.h"
#include "gannet/io/nm_sparse_encoder.h"
#include "gannet/io/safetensors.h"
#include "gannet/kernels/nm_sparse_matmul.h"
#include "gannet/kernels/quant_matmul.h"
#include "gannet/kernels/quantize_rows.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
using compress::NmSparseSpec;

namespace {

std::vector<float> random_matrix(int64_t N, int64_t K, uint32_t seed, float sd = 0.05f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, sd);
  std::vector<float> w((size_t)(N * K));
  for (float& x : w) x = normal(rng);
  return w;
}

const std::vector<NmSparseSpec> kSpecs = {
    {{2, 4}, 8, 0}, {{2, 4}, 8, 64}, {{1, 4}, 8, 32}, {{2, 4}, 4, 64}, {{1, 4}, 4, 0},
    {{2, 8}, 8, 64}, {{4, 8}, 4, 32}, {{3, 16}, 8, 0}, {{1, 2}, 8, 32}};

// ZeroQuant's quantizer on the N:M projection of w, as a dense matrix: what the sparse form holds.
io::QuantizedTensor dense_quantized_projection(const std::vector<float>& w, int64_t N, int64_t K,
                                               const NmSparseSpec& spec) {
  std::vector<float> proj = w;
  compress::nm_project(proj.data(), N, K, spec.pattern);
  compress::WeightQuantSpec q;
  q.bits = spec.bits;
  q.group = spec.group;
  return compress::quantize_weights(proj.data(), N, K, q);
}

}  // namespace

TEST(NmSparse, HoldsTheQuantizedProjectionAndOnlyTheKeptEntries) {
  for (const NmSparseSpec& spec : kSpecs) {
    const int64_t N = 9, K = 128;
    const std::vector<float> w = random_matrix(N, K, (uint32_t)(spec.pattern.n * 31 + spec.pattern.m + spec.bits));
    const io::NmSparseTensor t = compress::quantize_nm_sparse(w.data(), N, K, spec);
    const io::QuantizedTensor dense = dense_quantized_projection(w, N, K, spec);
    const Tensor a = t.dequantize(), b = dense.dequantize();
    EXPECT_EQ(std::memcmp(a.f32(), b.f32(), sizeof(float) * N * K), 0) << spec.describe();
    // Only the kept entries are stored: n / m of the values, index_bits per kept entry.
    const int64_t kept = K / spec.pattern.m * spec.pattern.n;
    EXPECT_EQ(t.values.nbytes(), (size_t)(N * kept * spec.bits / 8)) << spec.describe();
    EXPECT_EQ(t.index.nbytes(), (size_t)(N * ((kept * spec.pattern.index_bits() + 7) / 8))) << spec.describe();
    // Every stored column is one the mask keeps.
    const std::vector<uint8_t> mask = compress::nm_mask(w.data(), N, K, spec.pattern);
    const kernels::NmSparseWeights v = t.view();
    for (int64_t r = 0; r < N; ++r)
      for (int64_t j = 0; j < kept; ++j) ASSERT_TRUE(mask[(size_t)(r * K + v.column(r, j))]) << spec.describe();
  }
}

TEST(NmSparse, ReferenceProductEqualsTheDenseQuantizedProductBitwise) {
  for (const NmSparseSpec& spec : kSpecs) {
    const int64_t N = 21, K = 256, M = 5;
    const std::vector<float> w = random_matrix(N, K, (uint32_t)(spec.pattern.m * 7 + spec.bits));
    const io::NmSparseTensor t = compress::quantize_nm_sparse(w.data(), N, K, spec);
    const io::QuantizedTensor dense = dense_quantized_projection(w, N, K, spec);
    std::vector<uint8_t> packed((size_t)kernels::qpacked_bytes(dense.view()) + 64);
    void* aligned = packed.data() + (64 - (uintptr_t)packed.data() % 64) % 64;
    kernels::pack_quantized(dense.view(), aligned);

    const std::vector<float> x = random_matrix(M, K, 99, 1.f);
    std::vector<int8_t> aq((size_t)(M * K));
    std::vector<float> sa((size_t)M);
    kernels::quantize_rows(x.data(), K, M, K, 0.f, aq.data(), K, sa.data());
    const kernels::QuantizedRows A{aq.data(), K, sa.data(), M, K};
    const std::vector<float> bias = random_matrix(1, N, 5, 1.f);
    for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
      std::vector<float> sparse((size_t)(M * N)), expected((size_t)(M * N));
      kernels::ref::nm_sparse_matmul(A, t.view(), b, sparse.data(), N);
      kernels::quant_matmul(A, kernels::qpacked_view(dense.view(), aligned), b, expected.data(), N,
                            kernels::Epilogue::store);
      EXPECT_EQ(std::memcmp(sparse.data(), expected.data(), sizeof(float) * M * N), 0)
          << spec.describe() << (b ? " with bias" : "");
    }
  }
}

TEST(NmSparse, ValidateRejectsCorruptParts) {
  const std::vector<float> w = random_matrix(3, 64, 7);
  const io::NmSparseTensor good = compress::quantize_nm_sparse(w.data(), 3, 64, NmSparseSpec{{2, 4}, 8, 0});
  auto corrupt = [&](auto&& change) {
    io::NmSparseTensor t = good;
    t.values = good.values.clone();
    t.index = good.index.clone();
    t.scale = good.scale.clone();
    change(t);
    return message_of([&] { t.validate("w"); });
  };
  EXPECT_NO_THROW(good.validate("w"));
  // Positions 1 then 0 in the first run: not increasing.
  EXPECT_TRUE(has(corrupt([](io::NmSparseTensor& t) { static_cast<uint8_t*>(t.index.raw())[0] = 0x01; }),
                  "above the run's previous one"));
  EXPECT_TRUE(has(corrupt([](io::NmSparseTensor& t) { static_cast<int8_t*>(t.values.raw())[3] = -128; }),
                  "outside the symmetric 8-bit range"));
  EXPECT_TRUE(has(corrupt([](io::NmSparseTensor& t) { t.scale.f32()[2] = -1.f; }), "not a finite non-negative"));
  EXPECT_TRUE(has(corrupt([](io::NmSparseTensor& t) { t.group = 48; }), "group 48"));
  EXPECT_TRUE(has(corrupt([](io::NmSparseTensor& t) { t.m = 8; }), "w values"));
  EXPECT_TRUE(has(message_of([&] { compress::quantize_nm_sparse(w.data(), 3, 64, NmSparseSpec{{2, 4}, 8, 48}); }),
                  "group 48 is not 0 (per row) or a multiple of 32 and of 4"));
  EXPECT_TRUE(has(message_of([&] { compress::quantize_nm_sparse(w.data(), 4, 48, NmSparseSpec{{2, 4}, 8, 0}); }),
                  "input width a multiple of 32"));
}

TEST(NmSparse, ProductRejectsBadShapes) {
  const std::vector<float> w = random_matrix(3, 64, 8);
  const io::NmSparseTensor t = compress::quantize_nm_sparse(w.data(), 3, 64, NmSparseSpec{{2, 4}, 8, 0});
  std::vector<int8_t> aq(2 * 63);
  std::vector<float> sa(2), y(6);
  const kernels::QuantizedRows A{aq.data(), 63, sa.data(), 2, 63};
  EXPECT_TRUE(has(message_of([&] { kernels::ref::nm_sparse_matmul(A, t.view(), nullptr, y.data(), 3); }),
                  "activations have 63 columns, the weights 64"));
}

namespace {

struct Packed {
  std::vector<uint8_t> bytes;
  kernels::NmSparsePacked view;
  explicit Packed(const kernels::NmSparseWeights& w) : bytes((size_t)kernels::nm_sparse_packed_bytes(w) + 64) {
    void* aligned = bytes.data() + (64 - (uintptr_t)bytes.data() % 64) % 64;
    view = kernels::pack_nm_sparse(w, aligned);
  }
};

struct Rows {
  std::vector<int8_t> q;
  std::vector<float> scale;
  kernels::QuantizedRows view;
  Rows(int64_t M, int64_t K, int64_t ld, uint32_t seed) : q((size_t)(M * ld), int8_t(77)), scale((size_t)M) {
    const std::vector<float> x = random_matrix(M, K, seed, 1.f);
    kernels::quantize_rows(x.data(), K, M, K, 0.f, q.data(), ld, scale.data());
    if (M > 1)  // the extremes: -128 (which quantize_rows never writes) and 127
      for (int64_t k = 0; k < K; ++k) q[(size_t)(ld + k)] = (k % 3 == 0) ? int8_t(-128) : int8_t(127);
    view = {q.data(), ld, scale.data(), M, K};
  }
};

}  // namespace

// The vector path (on CPUs with AVX-512 VNNI and VBMI; elsewhere nm_sparse_matmul is the reference)
// against the reference, bitwise: n:4 patterns, groups, row counts, widths and thread counts.
TEST(NmSparse, PackedProductEqualsTheReferenceBitwise) {
  if (!(cpu_has(Isa::avx512) && cpu_has_avx512_vnni() && cpu_has_avx512_vbmi_gfni()))
    GTEST_SKIP() << "no AVX-512 VNNI + VBMI: nm_sparse_matmul is the reference on this CPU";
  for (const NmSparseSpec& spec : std::vector<NmSparseSpec>{{{2, 4}, 8, 0}, {{2, 4}, 8, 32}, {{1, 4}, 8, 64},
                                                          {{1, 4}, 8, 0}, {{2, 4}, 8, 128}})
    for (const auto& [N, K] : std::vector<std::pair<int64_t, int64_t>>{{21, 256}, {16, 64}, {3, 384}, {70, 128}}) {
      const std::vector<float> w = random_matrix(N, K, (uint32_t)(N + K + spec.pattern.n));
      const io::NmSparseTensor t = compress::quantize_nm_sparse(w.data(), N, K, spec);
      ASSERT_TRUE(kernels::nm_sparse_packable(t.view()));
      const Packed p(t.view());
      const std::vector<float> bias = random_matrix(1, N, 6, 1.f);
      for (int64_t M : {1, 2, 5, 6, 7, 13}) {
        const Rows a(M, K, K + 5, (uint32_t)(M * 3 + K));
        for (const float* b : {static_cast<const float*>(nullptr), bias.data()})
          for (int threads : {1, 2}) {
            omp_set_num_threads(threads);
            std::vector<float> got((size_t)(M * (N + 2)), -7.f), want((size_t)(M * (N + 2)), -7.f);
            kernels::nm_sparse_matmul(a.view, p.view, t.view(), b, got.data(), N + 2);
            kernels::ref::nm_sparse_matmul(a.view, t.view(), b, want.data(), N + 2);
            EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0)
                << spec.describe() << " N " << N << " K " << K << " M " << M << " threads " << threads;
          }
      }
    }
  omp_set_num_threads(2);
}

// The AVX2 body on its own (the dispatcher picks AVX-512 where it can), against the reference.
TEST(NmSparse, Avx2BodyEqualsTheReferenceBitwise) {
  if (!cpu_has(Isa::avx2)) GTEST_SKIP() << "no AVX2 on this CPU";
  for (const NmSparseSpec& spec : std::vector<NmSparseSpec>{{{2, 4}, 8, 0}, {{1, 4}, 8, 32}, {{2, 4}, 8, 64}})
    for (const auto& [N, K] : std::vector<std::pair<int64_t, int64_t>>{{21, 256}, {3, 384}, {33, 64}}) {
      const std::vector<float> w = random_matrix(N, K, (uint32_t)(N * 7 + K + spec.pattern.n));
      const io::NmSparseTensor t = compress::quantize_nm_sparse(w.data(), N, K, spec);
      const Packed p(t.view());
      const std::vector<float> bias = random_matrix(1, N, 16, 1.f);
      for (int64_t M : {1, 3, 4, 9}) {
        const Rows a(M, K, K + 3, (uint32_t)(M + K));
        const int64_t stride = K + 64;
        std::vector<uint8_t> x((size_t)(M * stride), 0);
        for (int64_t m = 0; m < M; ++m) std::memcpy(&x[(size_t)(m * stride)], &a.q[(size_t)(m * (K + 3))], (size_t)K);
        const kernels::GatherRows rows{x.data(), stride, a.scale.data(), M};
        std::vector<float> got((size_t)(M * N), -7.f), want((size_t)(M * N), -7.f);
        kernels::avx2::nm_sparse_matmul_range(rows, p.view, bias.data(), got.data(), N, 0, p.view.blocks());
        kernels::ref::nm_sparse_matmul(a.view, t.view(), bias.data(), want.data(), N);
        EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0)
            << spec.describe() << " N " << N << " K " << K << " M " << M;
      }
    }
}

TEST(NmSparse, OnlyNOf4Int8IsPacked) {
  const std::vector<float> w = random_matrix(4, 64, 9);
  for (const NmSparseSpec& spec : std::vector<NmSparseSpec>{{{2, 4}, 4, 0}, {{2, 8}, 8, 0}, {{3, 4}, 8, 0}}) {
    const io::NmSparseTensor t = compress::quantize_nm_sparse(w.data(), 4, 64, spec);
    EXPECT_FALSE(kernels::nm_sparse_packable(t.view())) << spec.describe();
    std::vector<uint8_t> out(4096);
    EXPECT_TRUE(has(message_of([&] { kernels::pack_nm_sparse(t.view(), out.data()); }), "the vector layout takes"));
  }
}

class NmSparseFile : public TempDirTest {};

// The entries and metadata of a weight, saved and read back: the same tensor; a wrong pattern,
// packing or part is a one-line error naming the file and the weight.
TEST_F(NmSparseFile, EntriesRoundTripAndBadMetadataIsAnError) {
  const std::vector<float> w = random_matrix(5, 128, 12);
  const io::NmSparseTensor t = compress::quantize_nm_sparse(w.data(), 5, 128, NmSparseSpec{{1, 4}, 4, 32});
  auto save = [&](const nlohmann::json& meta, bool drop_index = false) {
    std::vector<std::pair<std::string, Tensor>> entries;
    t.append_entries("fc", entries);
    if (drop_index) entries.erase(entries.begin() + 1);
    const std::string path = file("w.safetensors");
    io::save_safetensors(path, entries, {{"weights", nlohmann::json{{"fc", meta}}.dump()}});
    return path;
  };
  auto load = [&](const std::string& path) {
    const io::SafeTensors f = io::SafeTensors::open(path);
    const nlohmann::json doc = nlohmann::json::parse(f.metadata().at("weights"));
    const io::JsonReader r(doc, path + " weights");
    return io::NmSparseTensor::read(f, "fc", r.child("fc"));
  };
  const io::NmSparseTensor back = load(save(t.metadata()));
  EXPECT_EQ(back.n, 1);
  EXPECT_EQ(back.m, 4);
  EXPECT_EQ(back.bits, 4);
  EXPECT_EQ(back.group, 32);
  const Tensor a = back.dequantize(), b = t.dequantize();
  EXPECT_EQ(std::memcmp(a.f32(), b.f32(), sizeof(float) * 5 * 128), 0);

  nlohmann::json meta = t.metadata();
  meta["pattern"] = "2:4";  // the parts hold 1:4's sizes
  EXPECT_TRUE(has(message_of([&] { load(save(meta)); }), "N:M sparse tensor 'fc'"));
  meta = t.metadata();
  meta["pattern"] = "4:4";
  EXPECT_TRUE(has(message_of([&] { load(save(meta)); }), "N:M pattern 4:4"));
  meta = t.metadata();
  meta["packing"] = "dense";
  EXPECT_TRUE(has(message_of([&] { load(save(meta)); }), "has packing 'dense'"));
  meta = t.metadata();
  meta["bits"] = (int64_t(1) << 32) + 8;
  EXPECT_TRUE(has(message_of([&] { load(save(meta)); }), "-bit values (8 or 4)"));
  EXPECT_TRUE(has(message_of([&] { load(save(t.metadata(), true)); }), "tensor 'fc.index' is missing"));
}

// The packed encoder file: a round trip keeps every tensor and form; damage to the metadata or
// the tensors is a one-line error naming the problem; the checkpoint readers refuse it by name.
TEST_F(NmSparseFile, PackedEncoderRoundTripsAndRejectsDamage) {
  models::EncoderConfig c;
  c.vocab_size = 40, c.n_ctx = 8, c.n_layer = 1, c.n_head = 2, c.n_embd = 32, c.num_classes = 3;
  models::Encoder model(c);
  model.init(2);
  std::vector<std::array<compress::NmProductForm, 4>> forms(1);
  forms[0][0].pattern = NmPattern{2, 4};
  forms[0][2].pattern = NmPattern{1, 4};
  forms[0][2].quant = {4, 32};
  std::map<std::string, Tensor> masks;
  for (const nn::Parameter& p : model.parameters())
    for (const char* product : {"h.0.attn.c_attn", "h.0.mlp.c_fc"})
      if (p.name == std::string(product) + ".weight") masks.emplace(product, Tensor::full(p.var.value().shape(), 1.f));
  const io::NmSparseEncoder packed = compress::pack_nm_sparse_encoder(model, forms, masks);
  const std::string path = file("nm.safetensors");
  io::save_nm_sparse_encoder(path, packed);
  const io::NmSparseEncoder back = io::read_nm_sparse_encoder(path);
  EXPECT_EQ(back.sparse.size(), 2u);
  EXPECT_EQ(back.quantized.size(), 2u);
  EXPECT_EQ(back.sparse.at("h.0.mlp.c_fc.weight").bits, 4);
  EXPECT_EQ(back.bytes().total(), packed.bytes().total());
  EXPECT_TRUE(has(message_of([&] { compress::pack_nm_sparse_encoder(model, forms, {}); }), "no mask"));

  // Rewrites the file with its tensors and metadata edited.
  auto damaged = [&](const std::function<void(std::vector<std::pair<std::string, Tensor>>&,
                                              std::map<std::string, std::string>&)>& edit) {
    const io::SafeTensors f = io::SafeTensors::open(path);
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const std::string& n : f.names()) tensors.emplace_back(n, f.get(n).clone());
    std::map<std::string, std::string> meta = f.metadata();
    edit(tensors, meta);
    const std::string out = file("damaged.safetensors");
    io::save_safetensors(out, tensors, meta);
    return message_of([&] { io::read_nm_sparse_encoder(out); });
  };
  auto drop = [](std::vector<std::pair<std::string, Tensor>>& t, const std::string& name) {
    std::erase_if(t, [&](const auto& e) { return e.first == name; });
  };
  auto replace_in = [](std::string& text, const std::string& from, const std::string& to) {
    text.replace(text.find(from), from.size(), to);
  };
  EXPECT_TRUE(has(damaged([&](auto& t, auto&) { drop(t, "h.0.mlp.c_fc.weight.index"); }), "is missing"));
  EXPECT_TRUE(has(damaged([&](auto& t, auto&) { drop(t, "ln_f.bias"); }), "'ln_f.bias' is missing"));
  EXPECT_TRUE(has(damaged([&](auto& t, auto&) { t.emplace_back("extra", Tensor::zeros({2})); }), "unknown tensor 'extra'"));
  EXPECT_TRUE(has(damaged([&](auto&, auto& m) { replace_in(m["nm_sparse"], "\"dense\"", "\"sparse\""); }),
                  "has form 'sparse' (nm or dense)"));
  EXPECT_TRUE(has(damaged([&](auto&, auto& m) { replace_in(m["nm_sparse"], "\"1:4\"", "\"4:4\""); }), "4:4"));
  EXPECT_TRUE(has(damaged([&](auto&, auto& m) { m.erase("nm_sparse"); }), "not a packed N:M sparse encoder"));
  EXPECT_TRUE(has(damaged([&](auto&, auto& m) { replace_in(m["model_config"], "\"n_embd\":32", "\"n_embd\":64"); }),
                  "h.0"));
  EXPECT_TRUE(has(message_of([&] { io::read_encoder_checkpoint_config(path); }), "packed N:M sparse model"));
  EXPECT_TRUE(io::holds_nm_sparse_weights(io::SafeTensors::open(path)));
}
