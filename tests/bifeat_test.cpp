// BiFeat's store end to end: the fused gather is bitwise a decode of everything followed by a
// gather (every ISA, one and two threads), the file holds what the quantizers encode, the report
// is what a direct computation gives, the defaults reach 30x, and broken files are one error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <vector>

#include "bifeat_test_data.h"
#include "gannet/gnn/bifeat_compress.h"
#include "gannet/gnn/bifeat_decode.h"
#include "gannet/gnn/feature_store.h"
#include "gannet/io/safetensors.h"
#include "gannet/kernels/gemm.h"
#include "kernel_test_util.h"
#include "test_files.h"

namespace gannet::gnn {
namespace {

using testing::has;
using testing::message_of;

// Every node decoded by the quantizers' reference decodes, its level's row counted here.
std::vector<float> decode_all(const BiFeatStore& s) {
  const int64_t N = s.num_nodes(), D = s.dim(), M = s.tables().pq_subvectors;
  const ProductQuantizer pq = s.pq();
  std::vector<float> all((size_t)(N * D));
  int64_t sq_row = 0, pq_row = 0;
  for (int64_t v = 0; v < N; ++v) {
    if (s.in_sq_level(v)) s.sq().decode_row(s.tables().sq_codes + sq_row++ * s.sq().row_bytes(), &all[v * D]);
    else pq.decode(s.tables().pq_codes + pq_row++ * M, 1, &all[v * D]);
  }
  EXPECT_EQ(sq_row, s.sq_rows());
  EXPECT_EQ(pq_row, s.pq_rows());
  return all;
}

void decode_with(Isa isa, const BiFeatTables& t, const std::vector<int32_t>& nodes, float* out) {
  if (isa == Isa::avx512) avx512::bifeat_decode_rows(t, nodes.data(), (int64_t)nodes.size(), out);
  else if (isa == Isa::avx2) avx2::bifeat_decode_rows(t, nodes.data(), (int64_t)nodes.size(), out);
  else ref::bifeat_decode_rows(t, nodes.data(), (int64_t)nodes.size(), out);
}

std::vector<double> degrees(const CsrGraph& g) {
  std::vector<double> d((size_t)g.num_nodes);
  for (int64_t v = 0; v < g.num_nodes; ++v) d[v] = (double)g.degree(v);
  return d;
}

// Every layout with f32 and with 8-bit codebooks.
template <class Layout>
std::vector<std::pair<Layout, int>> with_codebook_bits(const std::vector<Layout>& layouts) {
  std::vector<std::pair<Layout, int>> out;
  for (const Layout& l : layouts)
    for (int bits : {32, 8}) out.emplace_back(l, bits);
  return out;
}

class BiFeatTest : public testing::TempDirTest {
 protected:
  struct Layout {
    int64_t N, D, M;
    int bits;
    double fraction;
  };
  // Compresses a random set of this layout into file(name) with quick k-means settings.
  BiFeatReport compress(const Layout& l, const std::string& name, uint64_t seed = 1, int codebook_bits = 32) {
    graph_ = testing::skewed_graph(l.N, 3, seed);
    features_ = testing::heavy_tailed_features(l.N, l.D, seed + 1);
    BiFeatOptions opt;
    opt.sq_fraction = l.fraction;
    opt.sq_bits = l.bits;
    opt.pq_subvectors = l.M;
    opt.codebook_bits = codebook_bits;
    opt.kmeans_iters = 4;
    opt.kmeans_sample = 1500;
    return compress_features(features_, graph_, file(name), opt);
  }
  // The file at `from` written again to `to` after `edit` changed its tensors or metadata.
  using Tensors = std::vector<std::pair<std::string, Tensor>>;
  using Meta = std::map<std::string, std::string>;
  void rewrite(const std::string& from, const std::string& to, const std::function<void(Tensors&, Meta&)>& edit) {
    const io::SafeTensors f = io::SafeTensors::open(from);
    Tensors tensors;
    for (const std::string& n : f.names()) tensors.emplace_back(n, f.get(n).clone());
    Meta meta = f.metadata();
    edit(tensors, meta);
    io::save_safetensors(to, tensors, meta);
  }
  static Tensor& tensor(Tensors& t, const std::string& name) {
    for (auto& [n, v] : t)
      if (n == name) return v;
    throw Error("no tensor " + name);
  }

  void check_file_contents(int cb_bits);

  CsrGraph graph_;
  Tensor features_;
};

TEST_F(BiFeatTest, FusedGatherEqualsDecodeAllThenGatherBitwise) {
  const std::vector<Layout> layouts = {{2000, 32, 4, 8, 0.1},  {2000, 36, 6, 4, 0.1},  {1500, 19, 1, 8, 0.2},
                                       {1500, 19, 19, 4, 0.2}, {1200, 128, 8, 8, 0.05}, {1200, 128, 16, 4, 0.0},
                                       {1000, 40, 2, 8, 0.1}};
  std::vector<Isa> isas = testing::vector_isas();
  isas.push_back(Isa::scalar);
  testing::note_missing_isas();
  for (const auto& [l, cb_bits] : with_codebook_bits(layouts)) {
    SCOPED_TRACE(str("N=", l.N, " D=", l.D, " M=", l.M, " bits=", l.bits, " codebook bits=", cb_bits));
    compress(l, "f.safetensors", 1, cb_bits);
    const BiFeatStore store = BiFeatStore::open(file("f.safetensors"));
    const std::vector<float> all = decode_all(store);
    Rng rng(l.D);
    std::vector<int32_t> nodes(3000);  // repeats and every level
    for (auto& v : nodes) v = (int32_t)rng.below(l.N);
    std::vector<float> want(nodes.size() * l.D), got(want.size());
    for (size_t i = 0; i < nodes.size(); ++i) std::memcpy(&want[i * l.D], &all[nodes[i] * l.D], l.D * sizeof(float));
    for (Isa isa : isas) {
      std::fill(got.begin(), got.end(), -1.f);
      decode_with(isa, store.tables(), nodes, got.data());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0) << isa_name(isa);
    }
    const int saved = kernels::num_threads();
    for (int threads : {1, 2}) {
      kernels::set_num_threads(threads);
      std::fill(got.begin(), got.end(), -1.f);
      store.gather(nodes.data(), (int64_t)nodes.size(), got.data());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0) << threads << " threads";
    }
    kernels::set_num_threads(saved);
  }
}

TEST_F(BiFeatTest, FileHoldsTheHighestDegreeNodesAndTheQuantizersCodes) {
  for (int cb_bits : {32, 8}) {
    SCOPED_TRACE(cb_bits);
    check_file_contents(cb_bits);
  }
}

void BiFeatTest::check_file_contents(int cb_bits) {
  const Layout l{1500, 24, 4, 8, 0.1};
  compress(l, "f.safetensors", 1, cb_bits);
  const BiFeatStore s = BiFeatStore::open(file("f.safetensors"));
  EXPECT_EQ(s.metadata().at("version"), "2");
  EXPECT_EQ(s.metadata().at("pq_codebook_bits"), std::to_string(cb_bits));
  EXPECT_EQ(s.tables().pq_codebook_bits, cb_bits);
  EXPECT_EQ(s.sq_rows(), 150);
  EXPECT_EQ(s.pq_rows(), 1350);
  EXPECT_EQ(s.metadata().at("importance"), "degree");
  EXPECT_EQ(s.metadata().at("sq_bits"), "8");
  EXPECT_EQ(s.metadata().at("pq_centroids"), "256");
  // Every SQ node has at least the degree of every PQ node.
  const std::vector<double> deg = degrees(graph_);
  double min_sq = 1e300, max_pq = -1;
  for (int64_t v = 0; v < l.N; ++v) {
    if (s.in_sq_level(v)) min_sq = std::min(min_sq, deg[v]);
    else max_pq = std::max(max_pq, deg[v]);
  }
  EXPECT_GE(min_sq, max_pq);
  // The codes are the quantizers' codes of the nodes' rows, in node order.
  std::vector<int32_t> sq_nodes, pq_nodes;
  for (int32_t v = 0; v < l.N; ++v) (s.in_sq_level(v) ? sq_nodes : pq_nodes).push_back(v);
  std::vector<uint8_t> sq_codes(sq_nodes.size() * s.sq().row_bytes()), pq_codes(pq_nodes.size() * l.M);
  s.sq().encode(features_.f32(), l.D, sq_nodes.data(), (int64_t)sq_nodes.size(), sq_codes.data());
  s.pq().encode(features_.f32(), l.D, pq_nodes.data(), (int64_t)pq_nodes.size(), pq_codes.data());
  EXPECT_EQ(std::memcmp(sq_codes.data(), s.tables().sq_codes, sq_codes.size()), 0);
  EXPECT_EQ(std::memcmp(pq_codes.data(), s.tables().pq_codes, pq_codes.size()), 0);
}

TEST_F(BiFeatTest, ReportAndBytesMatchADirectComputation) {
  const Layout l{1000, 20, 5, 4, 0.1};
  const BiFeatReport r = compress(l, "f.safetensors");
  const BiFeatStore s = BiFeatStore::open(file("f.safetensors"));
  const std::vector<float> all = decode_all(s);
  double err[2] = {0, 0}, norm[2] = {0, 0}, cos[2] = {0, 0};
  int64_t rows[2] = {0, 0};
  for (int64_t v = 0; v < l.N; ++v) {
    const int lv = s.in_sq_level(v) ? 0 : 1;
    double xx = 0, yy = 0, xy = 0;
    for (int64_t j = 0; j < l.D; ++j) {
      const double x = features_.f32()[v * l.D + j], y = all[v * l.D + j];
      err[lv] += (x - y) * (x - y), xx += x * x, yy += y * y, xy += x * y;
    }
    norm[lv] += xx;
    if (xx > 0) cos[lv] += yy > 0 ? xy / std::sqrt(xx * yy) : 0, ++rows[lv];
  }
  EXPECT_NEAR(r.sq.relative_mse, err[0] / norm[0], 1e-9);
  EXPECT_NEAR(r.pq.relative_mse, err[1] / norm[1], 1e-9);
  EXPECT_NEAR(r.all.relative_mse, (err[0] + err[1]) / (norm[0] + norm[1]), 1e-9);
  EXPECT_NEAR(r.sq.mean_cosine, cos[0] / rows[0], 1e-9);
  EXPECT_NEAR(r.pq.mean_cosine, cos[1] / rows[1], 1e-9);
  // bytes(): the mapped file, the rank table (4 bytes per 64 nodes), the SQ ranges and table.
  const int64_t file_bytes = (int64_t)std::filesystem::file_size(file("f.safetensors"));
  const int64_t words = (l.N + 63) / 64, table = l.D * 8;  // 4 bits: 8 magnitudes per column
  EXPECT_EQ(s.bytes(), file_bytes + 4 * words + 4 * (2 * l.D + table));
  EXPECT_EQ(r.all.bytes, s.bytes());
  EXPECT_EQ(r.sq.bytes + r.pq.bytes + r.map_bytes + r.other_bytes, s.bytes());
  EXPECT_EQ(r.pq.bytes, 900 * 5 + 5 * 256 * 4 * 4);
  EXPECT_EQ(r.map_bytes, 8 * words + 4 * words);
  EXPECT_DOUBLE_EQ(r.all.ratio, l.N * l.D * 4.0 / (double)s.bytes());
}

TEST_F(BiFeatTest, DefaultsCompressD128AtLeast30x) {
  const int64_t N = 100000, D = 128;
  const CsrGraph g = testing::skewed_graph(N, 2, 5);
  const Tensor f = testing::normal_features(N, D, 6);
  BiFeatOptions opt;  // the default layout; k-means kept short, it does not change the size
  opt.kmeans_iters = 2;
  opt.kmeans_sample = 4096;
  const BiFeatReport r = compress_features(f, g, file("f.safetensors"), opt);
  std::printf("[   INFO   ] defaults at N = 100k, D = 128: %.2fx; PQ %.2fx rel. MSE %.3f\n", r.all.ratio, r.pq.ratio,
              r.pq.relative_mse);
  EXPECT_GE(r.all.ratio, 30.0);
  EXPECT_EQ(r.sq.rows, 0);  // PQ alone, M = 16, 8-bit codebooks
  EXPECT_EQ(r.pq.bytes, N * 16 + 256 * D + 4 * D);
  EXPECT_LT(r.pq.relative_mse, 0.8);
}

TEST_F(BiFeatTest, OneLevelOnlyStillRoundTrips) {
  for (double fraction : {0.0, 1.0}) {
    SCOPED_TRACE(fraction);
    const BiFeatReport r = compress({300, 8, 2, 8, fraction}, "f.safetensors");
    const BiFeatStore s = BiFeatStore::open(file("f.safetensors"));
    EXPECT_EQ(s.sq_rows(), fraction == 0 ? 0 : 300);
    const std::vector<float> all = decode_all(s);
    std::vector<int32_t> nodes(300);
    std::iota(nodes.begin(), nodes.end(), 0);
    std::vector<float> got(all.size());
    s.gather(nodes.data(), 300, got.data());
    EXPECT_EQ(std::memcmp(got.data(), all.data(), all.size() * sizeof(float)), 0);
    EXPECT_GT(r.all.mean_cosine, 0.5);
  }
}

TEST_F(BiFeatTest, GivenImportanceChoosesTheSqNodes) {
  EXPECT_EQ(select_sq_nodes({1, 3, 3, 0, 3}, 0.4), (std::vector<int32_t>{1, 2}));  // ties: lower id
  EXPECT_EQ(select_sq_nodes({1, 3, 3, 0, 3}, 0.0), std::vector<int32_t>{});
  EXPECT_EQ(select_sq_nodes({1, 2}, 1.0), (std::vector<int32_t>{0, 1}));
  const CsrGraph g = testing::skewed_graph(200, 2, 1);
  BiFeatOptions opt;
  opt.pq_subvectors = 2;
  opt.kmeans_iters = 1;
  opt.sq_fraction = 0.1;
  for (int v = 0; v < 200; ++v) opt.importance.push_back(200 - v);  // the first 20 nodes
  compress_features(testing::normal_features(200, 4, 1), g, file("f.safetensors"), opt);
  const BiFeatStore s = BiFeatStore::open(file("f.safetensors"));
  for (int v = 0; v < 200; ++v) EXPECT_EQ(s.in_sq_level(v), v < 20) << v;
  EXPECT_EQ(s.metadata().at("importance"), "given");
  opt.importance.pop_back();
  EXPECT_THROW(compress_features(testing::normal_features(200, 4, 1), g, file("g.safetensors"), opt), Error);
}

TEST_F(BiFeatTest, BadOptionsAreOneError) {
  const CsrGraph g = testing::skewed_graph(50, 1, 1);
  const Tensor f = testing::normal_features(50, 6, 1);
  BiFeatOptions opt;
  opt.pq_subvectors = 4;
  EXPECT_TRUE(has(message_of([&] { compress_features(f, g, file("f"), opt); }), "not a multiple"));
  opt.pq_subvectors = 3;
  opt.sq_bits = 5;
  EXPECT_TRUE(has(message_of([&] { compress_features(f, g, file("f"), opt); }), "sq bits 5"));
  opt.sq_bits = 8;
  EXPECT_TRUE(has(message_of([&] { compress_features(testing::normal_features(40, 6, 1), g, file("f"), opt); }),
                  "40 rows but the graph 50"));
  Tensor nan = f.clone();
  nan.f32()[6 * 49 + 2] = NAN;
  opt.sq_fraction = 1.0;  // node 49 in the SQ level, whose fit reads every value
  EXPECT_TRUE(has(message_of([&] { compress_features(nan, g, file("f"), opt); }), "row 49 column 2"));
  EXPECT_FALSE(std::filesystem::exists(file("f")));
}

TEST_F(BiFeatTest, CorruptFilesAreOneErrorNamingTheFileAndTheProblem) {
  compress({150, 8, 2, 8, 0.1}, "good.safetensors");  // 135 PQ rows: 135 centroids, codes can be out of range
  ASSERT_EQ(BiFeatStore::open(file("good.safetensors")).tables().pq_centroids, 135);
  const std::string bad = file("bad.safetensors");
  auto expect_error = [&](const std::string& what, const std::function<void(Tensors&, Meta&)>& edit) {
    SCOPED_TRACE(what);
    rewrite(file("good.safetensors"), bad, edit);
    const std::string m = message_of([&] { BiFeatStore::open(bad); });
    EXPECT_TRUE(has(m, bad)) << m;
    EXPECT_TRUE(has(m, what)) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  };
  expect_error("pq_codes row 5 sub-space 1 holds code 200", [](Tensors& t, Meta&) { tensor(t, "pq_codes").data<uint8_t>()[11] = 200; });
  expect_error("sq_codes row 3 column 4 holds a negative zero", [](Tensors& t, Meta&) { tensor(t, "sq_codes").data<uint8_t>()[3 * 8 + 4] = 0x80; });
  expect_error("sq_nodes marks nodes at or above num_nodes 150", [](Tensors& t, Meta&) { tensor(t, "sq_nodes").data<int64_t>()[2] |= int64_t(1) << 30; });
  expect_error("tensor 'sq_codes': expected u8[16, 8], got u8[15, 8]", [&](Tensors& t, Meta&) {
    int64_t* w = tensor(t, "sq_nodes").data<int64_t>();  // one more node in the SQ level than rows
    for (int v = 0; v < 150; ++v)
      if (!((w[v >> 6] >> (v & 63)) & 1)) {
        w[v >> 6] |= int64_t(1) << (v & 63);
        break;
      }
  });
  expect_error("tensor 'pq_codes': expected u8", [](Tensors& t, Meta&) { tensor(t, "pq_codes") = Tensor::zeros({135, 2}, DType::i32); });
  expect_error("pq_codebooks holds nan", [](Tensors& t, Meta&) { tensor(t, "pq_codebooks").f32()[7] = NAN; });
  expect_error("sq_log2_range", [](Tensors& t, Meta&) { tensor(t, "sq_log2_range").f32()[3] = -1.f; });
  expect_error("no tensor named 'sq_codes'", [](Tensors& t, Meta&) {
    t.erase(std::find_if(t.begin(), t.end(), [](const auto& p) { return p.first == "sq_codes"; }));
  });
  expect_error("metadata format", [](Tensors&, Meta& m) { m["format"] = "other"; });
  expect_error("format version '3' is not supported", [](Tensors&, Meta& m) { m["version"] = "3"; });
  expect_error("metadata has no 'dim'", [](Tensors&, Meta& m) { m.erase("dim"); });
  expect_error("metadata num_nodes", [](Tensors&, Meta& m) { m["num_nodes"] = "15x"; });
  expect_error("sq_bits is 6", [](Tensors&, Meta& m) { m["sq_bits"] = "6"; });
  // Truncated: the header promises more data than the file holds.
  {
    std::ifstream in(file("good.safetensors"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    testing::write(bad, bytes.substr(0, bytes.size() / 2));
    const std::string m = message_of([&] { BiFeatStore::open(bad); });
    EXPECT_TRUE(has(m, bad)) << m;
  }
}

TEST(Int8Codebooks, EachValueIsTheNearestStepOfItsColumnsScale) {
  const int64_t D = 12, M = 3, K = 5, ds = D / M;
  Rng rng(3);
  std::vector<float> cb((size_t)(K * D));
  for (size_t i = 0; i < cb.size(); ++i) cb[i] = (rng.uniform() * 2 - 1) * std::pow(10.f, (float)(i % ds) - 2);
  for (int64_t c = 0; c < K; ++c) cb[(1 * K + c) * ds + 2] = 0.f;  // sub-space 1, column 2: all zero
  const ProductQuantizer pq(D, M, K, cb);
  const Int8Codebooks q = quantize_codebooks(pq);
  ASSERT_EQ(q.values.size(), cb.size());
  ASSERT_EQ((int64_t)q.scales.size(), D);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t j = 0; j < ds; ++j) {
      double amax = 0;
      for (int64_t c = 0; c < K; ++c) amax = std::max(amax, std::fabs((double)cb[(m * K + c) * ds + j]));
      const double scale = q.scales[m * ds + j];
      EXPECT_NEAR(scale, amax / 127, amax * 1e-6) << m << " " << j;
      int top = 0;
      for (int64_t c = 0; c < K; ++c) {
        const int v = q.values[(m * K + c) * ds + j];
        EXPECT_GE(v, -127);
        top = std::max(top, std::abs(v));
        EXPECT_LE(std::fabs(v * scale - cb[(m * K + c) * ds + j]), scale * 0.5 * (1 + 1e-5)) << m << " " << j << " " << c;
      }
      EXPECT_EQ(top, amax > 0 ? 127 : 0);  // the column's largest magnitude is a full step count
    }
  }
  // Dequantized: the exact product (in double: 8 x 24 bits fit) rounded once to float.
  const ProductQuantizer back = dequantize_codebooks(D, M, K, q);
  for (size_t i = 0; i < cb.size(); ++i) {
    const int64_t m = (int64_t)i / (K * ds), j = (int64_t)i % ds;
    EXPECT_EQ(back.codebooks()[i], (float)((double)q.values[i] * (double)q.scales[m * ds + j])) << i;
  }
}

TEST_F(BiFeatTest, Int8CodebooksDecodeAsTheFilesIntegersTimesTheirScales) {
  const std::vector<Layout> layouts = {{1500, 36, 6, 8, 0.1}, {1200, 128, 16, 4, 0.0}, {1200, 128, 8, 8, 0.05},
                                       {1000, 40, 2, 4, 0.1}, {800, 7, 7, 8, 0.1},    {1000, 40, 5, 8, 0.1},
                                       {1000, 24, 3, 4, 0.0}};  // sub-vectors of 8: an odd count left over
  std::vector<Isa> isas = testing::vector_isas();
  isas.push_back(Isa::scalar);
  for (const Layout& l : layouts) {
    SCOPED_TRACE(str("N=", l.N, " D=", l.D, " M=", l.M));
    compress(l, "f.safetensors", 1, 8);
    const BiFeatStore s = BiFeatStore::open(file("f.safetensors"));
    // The reference reads the file's tensors itself: row r of the PQ level is node r-th PQ node.
    const io::SafeTensors f = io::SafeTensors::open(file("f.safetensors"));
    const Tensor q = f.get("pq_codebooks"), scale = f.get("pq_codebook_scales"), codes = f.get("pq_codes");
    ASSERT_EQ(q.dtype(), DType::i8);
    ASSERT_EQ(scale.dtype(), DType::f32);
    const int64_t K = q.dim(1), ds = l.D / l.M;
    std::vector<int32_t> nodes;
    std::vector<float> want;
    for (int32_t v = 0, row = 0; v < l.N; ++v) {
      if (s.in_sq_level(v)) continue;
      for (int64_t m = 0; m < l.M; ++m)
        for (int64_t j = 0; j < ds; ++j) {
          const int64_t c = codes.data<uint8_t>()[row * l.M + m];
          want.push_back((float)((double)q.data<int8_t>()[(m * K + c) * ds + j] * scale.f32()[m * ds + j]));
        }
      nodes.push_back(v), ++row;
    }
    std::vector<float> got(want.size());
    for (Isa isa : isas) {
      std::fill(got.begin(), got.end(), -1.f);
      decode_with(isa, s.tables(), nodes, got.data());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0) << isa_name(isa);
    }
    std::fill(got.begin(), got.end(), -1.f);
    s.gather(nodes.data(), (int64_t)nodes.size(), got.data());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0) << "gather";
  }
}

// Where PQ is lossy (many more rows than centroids, as in use), rounding the centroids to 8 bits
// adds little to its error. (With about as many rows as centroids PQ is near exact and the
// rounding, up to half a step per value, dominates: not the regime 8-bit codebooks are for.)
TEST_F(BiFeatTest, Int8CodebooksCostLittleErrorAndBytesMatch) {
  const Layout l{4000, 20, 5, 4, 0.1};
  const BiFeatReport r32 = compress(l, "f32.safetensors", 1, 32);
  const BiFeatReport r8 = compress(l, "f8.safetensors", 1, 8);
  std::printf("[   INFO   ] PQ rel. MSE: f32 codebooks %.5f, 8-bit %.5f\n", r32.pq.relative_mse, r8.pq.relative_mse);
  EXPECT_LT(r8.pq.relative_mse, r32.pq.relative_mse * 1.05);
  const BiFeatStore s = BiFeatStore::open(file("f8.safetensors"));
  EXPECT_EQ(r8.pq.bytes, 3600 * 5 + 5 * 256 * 4 + 20 * 4);  // codes, int8 codebooks, a scale per column
  const int64_t file_bytes = (int64_t)std::filesystem::file_size(file("f8.safetensors"));
  const int64_t words = (l.N + 63) / 64, table = l.D * 8;
  EXPECT_EQ(s.bytes(), file_bytes + 4 * words + 4 * (2 * l.D + table));
  EXPECT_EQ(r8.sq.bytes + r8.pq.bytes + r8.map_bytes + r8.other_bytes, s.bytes());
  EXPECT_EQ(r8.all.bytes, s.bytes());
}

// PQ with M = 16 on every node of a graph the Debian graph's size (63,697 nodes, D = 128): f32
// codebooks (128 KiB) keep it under 30x, 8-bit ones (32.5 KiB) bring it over.
TEST_F(BiFeatTest, PqM16WithInt8CodebooksReaches30xAtTheDebianGraphsSize) {
  const int64_t N = 63697, D = 128;
  const CsrGraph g = testing::skewed_graph(N, 2, 5);
  const Tensor f = testing::normal_features(N, D, 6);
  double ratio[2];
  for (int i = 0; i < 2; ++i) {
    BiFeatOptions opt;
    opt.sq_fraction = 0;
    opt.sq_bits = 4;  // the SQ level is empty; its decode table is still resident: 4 bits keep it at 4 KiB
    opt.pq_subvectors = 16;
    opt.codebook_bits = i == 0 ? 32 : 8;
    opt.kmeans_iters = 1;
    opt.kmeans_sample = 2048;
    const BiFeatReport r = compress_features(f, g, file("f.safetensors"), opt);
    EXPECT_EQ(r.pq.bytes, N * 16 + 16 * 256 * 8 * (i == 0 ? 4 : 1) + (i == 0 ? 0 : D * 4));
    ratio[i] = r.all.ratio;
  }
  std::printf("[   INFO   ] PQ M=16 at N = 63,697: f32 codebooks %.2fx, 8-bit %.2fx\n", ratio[0], ratio[1]);
  EXPECT_LT(ratio[0], 30.0);
  EXPECT_GE(ratio[1], 30.0);
}

TEST_F(BiFeatTest, CorruptInt8CodebookFilesAreOneError) {
  compress({150, 8, 2, 8, 0.1}, "good.safetensors", 1, 8);
  compress({150, 8, 2, 8, 0.1}, "good32.safetensors", 1, 32);
  const std::string bad = file("bad.safetensors");
  auto expect_error = [&](const std::string& from, const std::string& what,
                          const std::function<void(Tensors&, Meta&)>& edit) {
    SCOPED_TRACE(what);
    rewrite(file(from), bad, edit);
    const std::string m = message_of([&] { BiFeatStore::open(bad); });
    EXPECT_TRUE(has(m, bad)) << m;
    EXPECT_TRUE(has(m, what)) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  };
  const std::string g8 = "good.safetensors", g32 = "good32.safetensors";
  expect_error(g8, "pq_codebooks holds -128 at element 9", [](Tensors& t, Meta&) { tensor(t, "pq_codebooks").data<int8_t>()[9] = -128; });
  expect_error(g8, "pq_codebook_scales holds -0.5 at element 3", [](Tensors& t, Meta&) { tensor(t, "pq_codebook_scales").f32()[3] = -0.5f; });
  expect_error(g8, "pq_codebook_scales holds inf at element 0", [](Tensors& t, Meta&) { tensor(t, "pq_codebook_scales").f32()[0] = INFINITY; });
  expect_error(g8, "no tensor named 'pq_codebook_scales'", [](Tensors& t, Meta&) {
    t.erase(std::find_if(t.begin(), t.end(), [](const auto& p) { return p.first == "pq_codebook_scales"; }));
  });
  expect_error(g8, "tensor 'pq_codebook_scales': expected f32[2, 4]", [](Tensors& t, Meta&) { tensor(t, "pq_codebook_scales") = Tensor::zeros({2, 3}); });
  expect_error(g8, "pq_codebook_bits is 16, expected 32 or 8", [](Tensors&, Meta& m) { m["pq_codebook_bits"] = "16"; });
  expect_error(g8, "metadata has no 'pq_codebook_bits'", [](Tensors&, Meta& m) { m.erase("pq_codebook_bits"); });
  expect_error(g8, "tensor 'pq_codebooks': expected f32", [](Tensors&, Meta& m) { m["pq_codebook_bits"] = "32"; });
  expect_error(g8, "tensor 'pq_codebooks': expected f32", [](Tensors&, Meta& m) { m["version"] = "1"; });
  expect_error(g32, "tensor 'pq_codebooks': expected i8", [](Tensors&, Meta& m) { m["pq_codebook_bits"] = "8"; });
}

// Files of version 1 (f32 codebooks, no pq_codebook_bits) are still read, and decode the same.
TEST_F(BiFeatTest, Version1FilesStillOpen) {
  compress({300, 8, 2, 8, 0.1}, "v2.safetensors");
  rewrite(file("v2.safetensors"), file("v1.safetensors"), [](Tensors&, Meta& m) {
    m["version"] = "1";
    m.erase("pq_codebook_bits");
  });
  const BiFeatStore v1 = BiFeatStore::open(file("v1.safetensors")), v2 = BiFeatStore::open(file("v2.safetensors"));
  EXPECT_EQ(v1.tables().pq_codebook_bits, 32);
  std::vector<int32_t> nodes(300);
  std::iota(nodes.begin(), nodes.end(), 0);
  std::vector<float> a(300 * 8), b(a.size());
  v1.gather(nodes.data(), 300, a.data());
  v2.gather(nodes.data(), 300, b.data());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

TEST_F(BiFeatTest, GatherRejectsNodesOutOfRange) {
  compress({100, 4, 2, 8, 0.1}, "f.safetensors");
  const BiFeatStore s = BiFeatStore::open(file("f.safetensors"));
  const int32_t nodes[2] = {3, -1};
  float out[8];
  EXPECT_TRUE(has(message_of([&] { s.gather(nodes, 2, out); }), "node id -1 at position 1"));
}

}  // namespace
}  // namespace gannet::gnn
