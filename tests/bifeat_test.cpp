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

class BiFeatTest : public testing::TempDirTest {
 protected:
  struct Layout {
    int64_t N, D, M;
    int bits;
    double fraction;
  };
  // Compresses a random set of this layout into file(name) with quick k-means settings.
  BiFeatReport compress(const Layout& l, const std::string& name, uint64_t seed = 1) {
    graph_ = testing::skewed_graph(l.N, 3, seed);
    features_ = testing::heavy_tailed_features(l.N, l.D, seed + 1);
    BiFeatOptions opt;
    opt.sq_fraction = l.fraction;
    opt.sq_bits = l.bits;
    opt.pq_subvectors = l.M;
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

  CsrGraph graph_;
  Tensor features_;
};

TEST_F(BiFeatTest, FusedGatherEqualsDecodeAllThenGatherBitwise) {
  const std::vector<Layout> layouts = {
      {2000, 32, 4, 8, 0.1}, {2000, 36, 6, 4, 0.1}, {1500, 19, 1, 8, 0.2}, {1500, 19, 19, 4, 0.2}, {1200, 128, 8, 8, 0.05}};
  std::vector<Isa> isas = testing::vector_isas();
  isas.push_back(Isa::scalar);
  testing::note_missing_isas();
  for (const Layout& l : layouts) {
    SCOPED_TRACE(str("N=", l.N, " D=", l.D, " M=", l.M, " bits=", l.bits));
    compress(l, "f.safetensors");
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
  const Layout l{1500, 24, 4, 8, 0.1};
  compress(l, "f.safetensors");
  const BiFeatStore s = BiFeatStore::open(file("f.safetensors"));
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
  std::printf("[   INFO   ] defaults at N = 100k, D = 128: %.2fx; log-SQ %.2fx rel. MSE %.2e; PQ %.2fx rel. MSE %.3f\n",
              r.all.ratio, r.sq.ratio, r.sq.relative_mse, r.pq.ratio, r.pq.relative_mse);
  EXPECT_GE(r.all.ratio, 30.0);
  EXPECT_EQ(r.sq.rows, 4000);
  EXPECT_LT(r.sq.relative_mse, 3e-3);
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
  expect_error("format version '2' is not supported", [](Tensors&, Meta& m) { m["version"] = "2"; });
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

TEST_F(BiFeatTest, GatherRejectsNodesOutOfRange) {
  compress({100, 4, 2, 8, 0.1}, "f.safetensors");
  const BiFeatStore s = BiFeatStore::open(file("f.safetensors"));
  const int32_t nodes[2] = {3, -1};
  float out[8];
  EXPECT_TRUE(has(message_of([&] { s.gather(nodes, 2, out); }), "node id -1 at position 1"));
}

}  // namespace
}  // namespace gannet::gnn
