// XTC's binary and ternary weights: the quantizers' rules, the bit-plane packing, the storage in
// safetensors and the scalar reference product on the packed form.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "gannet/compress/low_bit_quantizer.h"
#include "gannet/core/limits.h"
#include "gannet/io/low_bit_file.h"
#include "gannet/io/safetensors.h"
#include "gannet/kernels/low_bit_matmul.h"
#include "gannet/kernels/quantize_rows.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
using compress::LowBitSpec;
using compress::quantize_low_bit;
using io::LowBitTensor;

namespace {

constexpr LowBitSpec kBinary{1, 0}, kTernary{2, 0};

// A matrix whose entries are exactly -1, 0 or +1 (times a per-row magnitude): both quantizers keep
// its signs (ternary: its zeros too) whatever the threshold, so the packing must reproduce it.
std::vector<float> matrix_of(const std::vector<std::vector<int>>& rows, int64_t K) {
  std::vector<float> w;
  for (size_t n = 0; n < rows.size(); ++n)
    for (int64_t k = 0; k < K; ++k) w.push_back((float)rows[n][k] * (float)(n % 7 + 1) * 0.25f);
  return w;
}

// Rows with every pattern of `values` over K columns (|values|^K rows) when there are at most
// `count` and `exhaustive`, else `count` random ones.
std::vector<std::vector<int>> patterns(const std::vector<int>& values, int64_t K, int64_t count, uint32_t seed,
                                       bool exhaustive = true) {
  std::vector<std::vector<int>> rows;
  int64_t all = 1;
  for (int64_t k = 0; k < K && all <= count; ++k) all *= (int64_t)values.size();
  if (exhaustive && all <= count) {
    for (int64_t p = 0; p < all; ++p) {
      std::vector<int> r;
      for (int64_t k = 0, q = p; k < K; ++k, q /= (int64_t)values.size()) r.push_back(values[q % values.size()]);
      rows.push_back(r);
    }
    return rows;
  }
  std::mt19937 rng(seed);
  for (int64_t i = 0; i < count; ++i) {
    std::vector<int> r;
    for (int64_t k = 0; k < K; ++k) r.push_back(values[rng() % values.size()]);
    rows.push_back(r);
  }
  return rows;
}

bool bit(const Tensor& plane, int64_t n, int64_t k) {
  return kernels::LowBitWeights::bit(static_cast<const uint8_t*>(plane.raw()), plane.dim(1), n, k);
}

void expect_round_trip(const std::vector<std::vector<int>>& rows, int64_t K, const LowBitSpec& spec) {
  const auto w = matrix_of(rows, K);
  const int64_t N = (int64_t)rows.size();
  const LowBitTensor t = quantize_low_bit(w.data(), N, K, spec);
  t.validate("round trip");
  const kernels::LowBitWeights v = t.view();
  const Tensor d = t.dequantize();
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) {
      const int expected = rows[n][k] == 0 && spec.bits == 1 ? 1 : rows[n][k];  // binary: sign(0) = +1
      ASSERT_EQ(v.value(n, k), expected) << "K " << K << " row " << n << " column " << k;
      ASSERT_EQ(d.f32()[n * K + k], v.scale[n * v.groups_per_row() + k / v.group] * (float)expected);
    }
    for (int64_t k = K; k < t.padded_in; ++k) {
      ASSERT_FALSE(bit(t.sign, n, k)) << "padding sign bit, K " << K;
      if (t.ternary()) {
        ASSERT_FALSE(bit(t.nonzero, n, k)) << "padding nonzero bit, K " << K;
      }
    }
  }
}

TEST(LowBitWeights, BinaryPackingRoundTripsEveryPattern) {
  for (int64_t K : {1, 2, 5, 8, 10})  // every pattern (2^K rows)
    expect_round_trip(patterns({-1, 1}, K, 1024, 1), K, kBinary);
  for (int64_t K : {31, 32, 33, 63, 64, 65, 100, 257}) {  // rows not a multiple of the word
    expect_round_trip(patterns({-1, 1}, K, 40, (uint32_t)K), K, kBinary);
    expect_round_trip(patterns({-1, 1}, K, 40, (uint32_t)K), K, LowBitSpec{1, 32});
  }
}

TEST(LowBitWeights, TernaryPackingRoundTripsEveryPattern) {
  for (int64_t K : {1, 3, 6})  // every pattern (3^K rows)
    expect_round_trip(patterns({-1, 0, 1}, K, 1024, 2), K, kTernary);
  for (int64_t K : {31, 32, 33, 64, 65, 100, 257}) {
    expect_round_trip(patterns({-1, 0, 1}, K, 40, (uint32_t)K), K, kTernary);
    expect_round_trip(patterns({-1, 0, 1}, K, 40, (uint32_t)K), K, LowBitSpec{2, 64});
  }
}

TEST(LowBitWeights, BitLayoutIsLsbFirstAlongTheInput) {
  std::vector<float> w(40, -1.f);
  for (int k : {0, 9, 31, 32, 39}) w[k] = 1.f;
  const LowBitTensor t = quantize_low_bit(w.data(), 1, 40, kBinary);
  ASSERT_EQ(t.padded_in, 64);
  ASSERT_EQ(t.sign.shape(), (Shape{1, 8}));
  const uint8_t* b = static_cast<const uint8_t*>(t.sign.raw());
  const std::vector<uint8_t> expected = {0x01, 0x02, 0x00, 0x80, 0x81, 0x00, 0x00, 0x00};
  EXPECT_EQ(std::vector<uint8_t>(b, b + 8), expected);
  const kernels::LowBitWeights v = t.view();
  EXPECT_EQ(v.word(v.sign, 0, 0), 0x80000201u);
  EXPECT_EQ(v.word(v.sign, 0, 1), 0x00000081u);
}

TEST(LowBitWeights, BinaryScalesAreMeanAbsolutePerRowOrGroup) {
  const int64_t K = 70;  // padded to 96 with group 32: the last group has 6 real columns
  std::vector<float> w(2 * K);
  for (int64_t i = 0; i < 2 * K; ++i) w[i] = (float)((i * 37) % 11 - 5) * 0.5f;
  auto mean_abs = [&](int64_t n, int64_t k0, int64_t k1) {
    double s = 0;
    for (int64_t k = k0; k < k1; ++k) s += std::fabs((double)w[n * K + k]);
    return (float)(s / (double)(k1 - k0));
  };
  const LowBitTensor row = quantize_low_bit(w.data(), 2, K, kBinary);
  EXPECT_EQ(row.group, 96);
  EXPECT_EQ(row.scale.shape(), (Shape{2, 1}));
  for (int64_t n = 0; n < 2; ++n) EXPECT_EQ(row.scale.f32()[n], mean_abs(n, 0, K));
  const LowBitTensor grouped = quantize_low_bit(w.data(), 2, K, LowBitSpec{1, 32});
  EXPECT_EQ(grouped.padded_in, 96);
  ASSERT_EQ(grouped.scale.shape(), (Shape{2, 3}));
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t g = 0; g < 3; ++g)
      EXPECT_EQ(grouped.scale.f32()[n * 3 + g], mean_abs(n, g * 32, std::min<int64_t>(g * 32 + 32, K)));
  // A group as wide as the row padded to 32 or wider is one scale per row, not a wider padding.
  EXPECT_EQ(quantize_low_bit(w.data(), 2, K, LowBitSpec{1, 4096}).padded_in, 96);
  EXPECT_EQ(quantize_low_bit(w.data(), 2, K, LowBitSpec{1, 4096}).group, 96);
}

TEST(LowBitWeights, TernaryThresholdRule) {
  ASSERT_EQ(0.7f * 10.f, 7.f);  // so that the entries +-7 below lie exactly at delta
  // mean |w| = 10, delta = 7: values at exactly delta become 0; alpha = mean of the kept |w|.
  const std::vector<float> w = {7.f, -13.f, 10.f, -10.f,  //
                                -7.f, 13.f, 7.f, 3.f,     // mean 7.5, delta 5.25: 3 is dropped
                                0.f, 0.f, 0.f, 0.f,       // all zero: nothing kept, alpha 0
                                100.f, 1.f, -1.f, 2.f};   // mean 26, delta 18.2: only 100 kept
  const LowBitTensor t = quantize_low_bit(w.data(), 4, 4, kTernary);
  const kernels::LowBitWeights v = t.view();
  const std::vector<std::vector<int>> expected = {{0, -1, 1, -1}, {-1, 1, 1, 0}, {0, 0, 0, 0}, {1, 0, 0, 0}};
  for (int64_t n = 0; n < 4; ++n)
    for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(v.value(n, k), expected[n][k]) << n << ", " << k;
  EXPECT_EQ(t.scale.f32()[0], 11.f);
  EXPECT_EQ(t.scale.f32()[1], 9.f);
  EXPECT_EQ(t.scale.f32()[2], 0.f);
  EXPECT_EQ(t.scale.f32()[3], 100.f);
  // Zeros have sign bit 0 (one encoding per value).
  for (int64_t k = 0; k < 4; ++k) EXPECT_FALSE(bit(t.sign, 2, k));
  EXPECT_EQ(t.dequantize().f32()[1], -11.f);
}

TEST(LowBitWeights, BinarySignOfZeroIsPlus) {
  const std::vector<float> w = {0.f, -0.f, -2.f, 2.f};
  const LowBitTensor t = quantize_low_bit(w.data(), 1, 4, kBinary);
  EXPECT_EQ(t.view().value(0, 0), 1);
  EXPECT_EQ(t.view().value(0, 1), 1);
  EXPECT_EQ(t.view().value(0, 2), -1);
  EXPECT_EQ(t.scale.f32()[0], 1.f);
}

TEST(LowBitWeights, StorageIsOneOrTwoBitsPerWeightPlusScales) {
  const int64_t N = 64, K = 1024;
  std::vector<float> w(N * K, 0.5f);
  const int64_t f32_bytes = N * K * 4;
  EXPECT_EQ(quantize_low_bit(w.data(), N, K, kBinary).nbytes(), f32_bytes / 32 + N * 4);
  EXPECT_EQ(quantize_low_bit(w.data(), N, K, kTernary).nbytes(), 2 * f32_bytes / 32 + N * 4);
  EXPECT_EQ(quantize_low_bit(w.data(), N, K, LowBitSpec{1, 128}).nbytes(), f32_bytes / 32 + N * (K / 128) * 4);
  EXPECT_EQ(quantize_low_bit(w.data(), N, K, LowBitSpec{2, 64}).nbytes(), 2 * f32_bytes / 32 + N * (K / 64) * 4);
}

std::string one_line(const std::string& m) {
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  return m;
}

TEST(LowBitWeights, BadSpecsAndMatricesAreRejected) {
  const std::vector<float> w(64, 1.f);
  for (const LowBitSpec& bad : {LowBitSpec{3, 0}, LowBitSpec{0, 0}, LowBitSpec{1, 48}, LowBitSpec{1, -32},
                                LowBitSpec{2, 16}, LowBitSpec{1, kMaxQuantGroup * 2}})
    EXPECT_TRUE(has(one_line(message_of([&] { quantize_low_bit(w.data(), 2, 32, bad); })), "low-bit"))
        << bad.bits << " " << bad.group;
  EXPECT_TRUE(has(one_line(message_of([&] { quantize_low_bit(w.data(), 0, 32, kBinary); })), "empty"));
  EXPECT_TRUE(has(one_line(message_of([&] { quantize_low_bit(w.data(), 2, 0, kBinary); })), "empty"));
  std::vector<float> nan = w;
  nan[37] = std::nanf("");
  EXPECT_TRUE(has(one_line(message_of([&] { quantize_low_bit(nan.data(), 2, 32, kTernary); })), "weight [1, 5]"));
  EXPECT_TRUE(has(message_of([&] { quantize_low_bit(Tensor::zeros({2, 3, 4}), kBinary); }), "f32 matrix"));
  // Per-row scales on a row so wide that the int32 sums could overflow (checked before W is read).
  EXPECT_TRUE(has(one_line(message_of([&] { quantize_low_bit(w.data(), 1, kernels::kMaxLowBitGroup + 1, kBinary); })),
                  "give a group"));
  // A hand-made tensor whose sizes disagree.
  LowBitTensor t = quantize_low_bit(w.data(), 2, 32, kTernary);
  LowBitTensor g = t;
  g.group = 16;
  g.padded_in = 32;
  EXPECT_TRUE(has(one_line(message_of([&] { g.validate("x"); })), "x: group 16"));
  LowBitTensor wide = t;
  wide.group = wide.padded_in = kernels::kMaxLowBitGroup * 2;
  wide.in = wide.padded_in - 1;
  EXPECT_TRUE(has(one_line(message_of([&] { wide.validate("x"); })), "would overflow"));
  LowBitTensor s = t;
  s.scale = Tensor::zeros({2, 2});
  EXPECT_TRUE(has(one_line(message_of([&] { s.validate("x"); })), "x scales"));
  LowBitTensor b = t;
  b.nonzero = Tensor::zeros({2, 3}, DType::u8);
  EXPECT_TRUE(has(one_line(message_of([&] { b.validate("x"); })), "nonzero bits"));
  LowBitTensor bin = quantize_low_bit(w.data(), 2, 32, kBinary);
  bin.nonzero = t.nonzero;
  EXPECT_TRUE(has(one_line(message_of([&] { bin.validate("x"); })), "binary weights have no nonzero bits"));
}

// ---- safetensors ----

class LowBitFileTest : public TempDirTest {};

LowBitTensor random_low_bit(int64_t N, int64_t K, const LowBitSpec& spec, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 0.05f);
  std::vector<float> w(N * K);
  for (float& x : w) x = normal(rng);
  return quantize_low_bit(w.data(), N, K, spec);
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

TEST_F(LowBitFileTest, RoundTripsExactly) {
  for (const auto& [scheme, spec] : {std::pair{"w1a8", LowBitSpec{1, 64}}, std::pair{"w2a8", LowBitSpec{2, 0}}}) {
    io::LowBitFile f;
    f.scheme = scheme;
    f.weights["h.0.mlp.c_fc.weight"] = random_low_bit(48, 100, spec, 3);
    f.weights["h.0.attn.c_attn.weight"] = random_low_bit(9, 33, spec, 4);
    const std::string path = file(std::string(scheme) + ".safetensors");
    io::save_low_bit_file(path, f);
    const io::LowBitFile r = io::read_low_bit_file(path);
    EXPECT_EQ(r.scheme, scheme);
    ASSERT_EQ(r.weights.size(), 2u);
    for (const auto& [name, t] : f.weights) {
      const LowBitTensor& u = r.weights.at(name);
      EXPECT_EQ(u.bits, t.bits);
      EXPECT_EQ(u.rows, t.rows);
      EXPECT_EQ(u.in, t.in);
      EXPECT_EQ(u.padded_in, t.padded_in);
      EXPECT_EQ(u.group, t.group);
      EXPECT_TRUE(same_bytes(u.sign, t.sign)) << name;
      EXPECT_TRUE(same_bytes(u.scale, t.scale)) << name;
      EXPECT_EQ(u.nonzero.defined(), t.ternary());
      if (t.ternary()) {
        EXPECT_TRUE(same_bytes(u.nonzero, t.nonzero)) << name;
      }
      EXPECT_EQ(u.nbytes(), t.nbytes());
    }
    // Any safetensors reader sees the planes as U8 and the scheme in the metadata.
    const io::SafeTensors st = io::SafeTensors::open(path);
    EXPECT_TRUE(has(st.metadata().at("quantization"), std::string("\"scheme\":\"") + scheme + "\""));
    EXPECT_EQ(st.get("h.0.mlp.c_fc.weight.sign").dtype(), DType::u8);
  }
}

// Writes a file with the entries and metadata of `f`, changed by `edit` (tensors) and `edit_meta`.
std::string write_edited(const std::string& path, const LowBitTensor& t, const std::string& scheme,
                         const std::function<void(std::vector<std::pair<std::string, Tensor>>&)>& edit,
                         const std::function<void(nlohmann::json&)>& edit_meta) {
  std::vector<std::pair<std::string, Tensor>> entries;
  t.append_entries("w", entries);
  nlohmann::json doc = {{"format", io::kLowBitFormat}, {"scheme", scheme}, {"weights", {{"w", t.metadata()}}}};
  edit(entries);
  edit_meta(doc);
  io::save_safetensors(path, entries, {{"quantization", doc.dump()}});
  return path;
}

Tensor with_bit(const Tensor& plane, int64_t n, int64_t k) {
  Tensor c = plane.clone();
  static_cast<uint8_t*>(c.raw())[n * c.dim(1) + k / 8] |= uint8_t(1u << (k % 8));
  return c;
}

TEST_F(LowBitFileTest, CorruptFilesAreRejectedNamingTheFile) {
  const LowBitTensor tern = random_low_bit(4, 40, LowBitSpec{2, 0}, 5);  // padded to 64
  const LowBitTensor bin = random_low_bit(4, 40, LowBitSpec{1, 0}, 6);
  using Entries = std::vector<std::pair<std::string, Tensor>>;
  auto tensor = [](Entries& e, const std::string& name) -> Tensor& {
    for (auto& [n, t] : e)
      if (n == name) return t;
    throw std::runtime_error("no " + name);
  };
  auto none = [](Entries&) {};
  auto keep = [](nlohmann::json&) {};
  struct Case {
    const char* what;
    const LowBitTensor* t;
    std::string scheme;
    std::function<void(Entries&)> edit;
    std::function<void(nlohmann::json&)> meta;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"short plane", &tern, "w2a8", [&](Entries& e) { tensor(e, "w.sign") = Tensor::zeros({4, 7}, DType::u8); },
       keep, "sign bits"},
      {"plane dtype", &bin, "w1a8", [&](Entries& e) { tensor(e, "w.sign") = Tensor::zeros({4, 2}); }, keep,
       "sign bits must be u8"},
      {"padding bit", &bin, "w1a8", [&](Entries& e) { tensor(e, "w.sign") = with_bit(bin.sign, 3, 45); }, keep,
       "padding column 45"},
      {"zero with sign", &tern, "w2a8",
       [&](Entries& e) {
         Tensor z = tern.nonzero.clone();
         static_cast<uint8_t*>(z.raw())[0] = 0;
         tensor(e, "w.nonzero") = z;
         tensor(e, "w.sign") = with_bit(tern.sign, 0, 0);
       },
       keep, "sign bit set"},
      {"nan scale", &bin, "w1a8",
       [&](Entries& e) {
         Tensor s = bin.scale.clone();
         s.f32()[2] = std::nanf("");
         tensor(e, "w.scale") = s;
       },
       keep, "nan of row 2"},
      {"scale shape", &bin, "w1a8", [&](Entries& e) { tensor(e, "w.scale") = Tensor::zeros({4, 2}); }, keep,
       "scales"},
      {"missing scale", &bin, "w1a8", [&](Entries& e) { e.pop_back(); }, keep, "'w.scale' is missing"},
      {"missing nonzero", &tern, "w2a8", [&](Entries& e) { e.erase(e.begin() + 1); }, keep, "'w.nonzero' is missing"},
      {"extra tensor", &bin, "w1a8", [&](Entries& e) { e.emplace_back("v.sign", bin.sign); }, keep,
       "'v.sign' belongs to no listed"},
      {"stray part", &bin, "w1a8", [&](Entries& e) { e.emplace_back("w.foo", bin.sign); }, keep,
       "'w.foo' belongs to no listed"},
      {"binary with nonzero", &bin, "w1a8", [&](Entries& e) { e.emplace_back("w.nonzero", bin.sign); }, keep,
       "binary weights have a '.nonzero' plane"},
      {"bits 3", &bin, "w1a8", none, [](nlohmann::json& d) { d["weights"]["w"]["bits"] = 3; }, "3 bits"},
      {"bits 2^32+1", &bin, "w1a8", none, [](nlohmann::json& d) { d["weights"]["w"]["bits"] = 4294967297LL; },
       "4294967297 bits"},
      {"scheme mismatch", &tern, "w1a8", none, keep, "scheme w1a8 has 1"},
      {"unknown scheme", &bin, "w3a8", none, keep, "scheme 'w3a8' is not known"},
      {"format", &bin, "w1a8", none, [](nlohmann::json& d) { d["format"] = "gannet-quant-1"; },
       "format 'gannet-quant-1' is not supported"},
      {"packing", &bin, "w1a8", none, [](nlohmann::json& d) { d["weights"]["w"]["packing"] = "base3"; },
       "packing 'base3'"},
      {"in too wide", &bin, "w1a8", none, [](nlohmann::json& d) { d["weights"]["w"]["in"] = 65; }, "input width 65"},
      {"in too narrow", &bin, "w1a8", none, [](nlohmann::json& d) { d["weights"]["w"]["in"] = 32; },
       "input width 32"},
      {"rows", &bin, "w1a8", none, [](nlohmann::json& d) { d["weights"]["w"]["rows"] = 5; }, "sign bits"},
      {"huge padded_in", &bin, "w1a8", none,
       [](nlohmann::json& d) {
         d["weights"]["w"]["padded_in"] = 1LL << 62;
         d["weights"]["w"]["in"] = (1LL << 62) - 1;
       },
       "sign bits"},
      {"missing key", &bin, "w1a8", none, [](nlohmann::json& d) { d["weights"]["w"].erase("group"); }, "no 'group'"},
      {"unknown key", &bin, "w1a8", none, [](nlohmann::json& d) { d["weights"]["w"]["zero"] = 1; },
       "unknown key 'zero'"},
      {"entry not object", &bin, "w1a8", none, [](nlohmann::json& d) { d["weights"]["w"] = 1; }, "not a JSON object"},
      {"no weights", &bin, "w1a8", none, [](nlohmann::json& d) { d["weights"] = nlohmann::json::object(); },
       "lists no weights"},
  };
  for (const Case& c : cases) {
    const std::string path = file("corrupt.safetensors");
    write_edited(path, *c.t, c.scheme, c.edit, c.meta);
    const std::string m = one_line(message_of([&] { io::read_low_bit_file(path); }));
    EXPECT_TRUE(has(m, path)) << c.what << ": " << m;
    EXPECT_TRUE(has(m, c.message)) << c.what << ": " << m;
  }
  // A truncated file: the safetensors layer's error, naming the file.
  const std::string good = file("good.safetensors");
  io::save_low_bit_file(good, io::LowBitFile{"w1a8", {{"w", bin}}});
  const auto size = std::filesystem::file_size(good);
  std::filesystem::resize_file(good, size - 3);
  EXPECT_TRUE(has(one_line(message_of([&] { io::read_low_bit_file(good); })), good));
  // Saving refuses a weight that is not the scheme's before writing anything.
  const std::string unwritten = file("unwritten.safetensors");
  EXPECT_TRUE(has(message_of([&] { io::save_low_bit_file(unwritten, io::LowBitFile{"w1a8", {{"w", tern}}}); }),
                  "scheme w1a8"));
  EXPECT_FALSE(std::filesystem::exists(unwritten));
}

// ---- the reference product ----

struct Activations {
  std::vector<int8_t> q;
  std::vector<float> scale;
  int64_t M, K, ld;
  kernels::QuantizedRows rows() const { return {q.data(), ld, scale.data(), M, K}; }
};

// Random f32 rows quantized token-wise by kernels::quantize_rows; columns [K, ld) hold garbage
// (the product must not read them). The last row is all +127/-127 (the extreme int32 sums).
Activations random_activations(int64_t M, int64_t K, int64_t ld, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> x(M * K);
  for (float& v : x) v = normal(rng);
  for (int64_t k = 0; k < K; ++k) x[(M - 1) * K + k] = (k % 3 == 0) ? -2.f : 2.f;
  Activations a{std::vector<int8_t>(M * ld, int8_t(99)), std::vector<float>(M), M, K, ld};
  kernels::quantize_rows(x.data(), K, M, K, 0.f, a.q.data(), ld, a.scale.data());
  return a;
}

// A weight matrix of known {-1, 0, +1} entries (binary: {-1, +1}), quantized exactly (see matrix_of).
std::pair<std::vector<std::vector<int>>, LowBitTensor> known_weights(int64_t N, int64_t K, const LowBitSpec& spec,
                                                                     uint32_t seed) {
  auto rows = patterns(spec.bits == 1 ? std::vector<int>{-1, 1} : std::vector<int>{-1, 0, 1}, K, N, seed, false);
  if (spec.bits == 2) rows[1].assign(K, 0);  // an all-zero row: alpha 0
  const auto w = matrix_of(rows, K);
  return {rows, quantize_low_bit(w.data(), N, K, spec)};
}

TEST(LowBitMatmul, GroupSumsAreExactIntegers) {
  for (const LowBitSpec& spec : {LowBitSpec{1, 0}, LowBitSpec{1, 32}, LowBitSpec{2, 0}, LowBitSpec{2, 64}}) {
    for (int64_t K : {1, 31, 32, 100, 257}) {
      const int64_t M = 5, N = 12;
      const auto [w, t] = known_weights(N, K, spec, (uint32_t)K);
      const Activations a = random_activations(M, K, K + 13, (uint32_t)K + 1);
      const int64_t G = t.padded_in / t.group;
      std::vector<int32_t> S(M * N * G, -1);
      kernels::ref::low_bit_group_sums(a.rows(), t.view(), S.data());
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n)
          for (int64_t g = 0; g < G; ++g) {
            int32_t expected = 0;
            for (int64_t k = g * t.group; k < std::min(K, (g + 1) * t.group); ++k)
              expected += (int32_t)a.q[m * a.ld + k] * w[n][k];
            ASSERT_EQ(S[(m * N + n) * G + g], expected) << spec.describe() << " K " << K << " m " << m << " n " << n
                                                        << " g " << g;
          }
    }
  }
}

TEST(LowBitMatmul, ProductMatchesDequantizedMatricesInDouble) {
  for (const LowBitSpec& spec : {LowBitSpec{1, 0}, LowBitSpec{1, 64}, LowBitSpec{2, 0}, LowBitSpec{2, 32}}) {
    const int64_t M = 4, N = 10, K = 200;
    const LowBitTensor t = random_low_bit(N, K, spec, 7);
    const Activations a = random_activations(M, K, K + 5, 8);
    const Tensor w = t.dequantize();
    std::vector<float> y(M * (N + 3), -5.f);
    kernels::ref::low_bit_matmul(a.rows(), t.view(), y.data(), N + 3);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double sum = 0, mag = 0;
        for (int64_t k = 0; k < K; ++k) {
          const double term = (double)w.f32()[n * K + k] * ((double)a.scale[m] * (double)a.q[m * a.ld + k]);
          sum += term;
          mag += std::fabs(term);
        }
        EXPECT_NEAR(y[m * (N + 3) + n], sum, 1e-6 * mag + 1e-30) << spec.describe() << " m " << m << " n " << n;
      }
    for (int64_t m = 0; m < M; ++m) EXPECT_EQ(y[m * (N + 3) + N], -5.f);  // beyond N: untouched
  }
}

TEST(LowBitMatmul, ProductFollowsTheDocumentedArithmetic) {
  const LowBitTensor t = random_low_bit(6, 100, LowBitSpec{2, 32}, 9);
  const Activations a = random_activations(3, 100, 100, 10);
  const int64_t G = 4;
  std::vector<int32_t> S(3 * 6 * G);
  std::vector<float> y(3 * 6);
  kernels::ref::low_bit_group_sums(a.rows(), t.view(), S.data());
  kernels::ref::low_bit_matmul(a.rows(), t.view(), y.data(), 6);
  for (int64_t m = 0; m < 3; ++m)
    for (int64_t n = 0; n < 6; ++n) {
      float acc = 0.f;
      for (int64_t g = 0; g < G; ++g) acc = std::fma((float)S[(m * 6 + n) * G + g], t.scale.f32()[n * G + g], acc);
      EXPECT_EQ(y[m * 6 + n], acc * a.scale[m]);
    }
}

TEST(LowBitMatmul, BadShapesAreRejected) {
  const LowBitTensor t = random_low_bit(3, 64, kBinary, 11);
  const Activations a = random_activations(2, 63, 63, 12);
  std::vector<float> y(6);
  EXPECT_TRUE(has(one_line(message_of([&] { kernels::ref::low_bit_matmul(a.rows(), t.view(), y.data(), 3); })),
                  "activations have 63 columns, the weights 64"));
  const Activations b = random_activations(2, 64, 64, 12);
  EXPECT_TRUE(has(one_line(message_of([&] { kernels::ref::low_bit_matmul(b.rows(), t.view(), y.data(), 2); })),
                  "output stride 2"));
  kernels::LowBitWeights v = t.view();
  v.group = 48;
  EXPECT_TRUE(has(one_line(message_of([&] { kernels::ref::low_bit_matmul(b.rows(), v, y.data(), 3); })), "group 48"));
  v = t.view();
  v.K = v.padded_K = v.group = kernels::kMaxLowBitGroup * 2;
  const Activations wide{{}, {}, 0, v.K, v.K};
  EXPECT_TRUE(has(one_line(message_of([&] { kernels::ref::low_bit_matmul(wide.rows(), v, y.data(), 3); })),
                  "would overflow"));
  v = t.view();
  v.bits = 2;  // ternary without a nonzero plane
  EXPECT_TRUE(has(one_line(message_of([&] { kernels::ref::low_bit_matmul(b.rows(), v, y.data(), 3); })),
                  "planes or scales missing"));
}

}  // namespace
