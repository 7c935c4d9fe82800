#include "gannet/gnn/bifeat_compress.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>

#include "gannet/core/error.h"
#include "gannet/core/format_number.h"
#include "gannet/core/rng.h"
#include "gannet/io/safetensors.h"

namespace gannet::gnn {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// PQ rows encoded between two progress notes.
constexpr int64_t kEncodeNoteRows = int64_t(1) << 20;
// Nodes per chunk when measuring the reconstruction.
constexpr int64_t kMeasureChunk = 4096;

void check_options(const Tensor& features, const CsrGraph& graph, const BiFeatOptions& opt) {
  GANNET_CHECK(features.dtype() == DType::f32 && features.ndim() == 2, "bifeat: features are ", features.describe(),
               ", expected f32 [N, D]");
  GANNET_CHECK(features.dim(0) == graph.num_nodes, "bifeat: features have ", features.dim(0), " rows but the graph ",
               graph.num_nodes, " nodes");
  GANNET_CHECK(graph.num_nodes <= INT32_MAX, "bifeat: ", graph.num_nodes, " nodes exceed the int32 node ids");
  GANNET_CHECK(opt.sq_fraction >= 0 && opt.sq_fraction <= 1, "bifeat: sq fraction ", opt.sq_fraction,
               " is not in [0, 1]");
  GANNET_CHECK(opt.sq_bits == 8 || opt.sq_bits == 4, "bifeat: sq bits ", opt.sq_bits, ", expected 8 or 4");
  GANNET_CHECK(opt.pq_subvectors >= 1 && features.dim(1) % opt.pq_subvectors == 0, "bifeat: feature dimension ",
               features.dim(1), " is not a multiple of the PQ sub-vector count ", opt.pq_subvectors);
  GANNET_CHECK(opt.codebook_bits == 32 || opt.codebook_bits == 8, "bifeat: codebook bits ", opt.codebook_bits,
               ", expected 32 or 8");
  GANNET_CHECK(opt.kmeans_iters >= 0 && opt.kmeans_sample >= 1, "bifeat: k-means iterations ", opt.kmeans_iters,
               " (>= 0) or sample ", opt.kmeans_sample, " (>= 1) out of range");
  GANNET_CHECK(opt.importance.empty() || (int64_t)opt.importance.size() == graph.num_nodes, "bifeat: ",
               opt.importance.size(), " importance scores for ", graph.num_nodes, " nodes");
}

void note(const BiFeatOptions& opt, const std::string& s) {
  if (opt.progress) opt.progress(s);
}

std::vector<double> importance_of(const CsrGraph& graph, const BiFeatOptions& opt) {
  if (!opt.importance.empty()) return opt.importance;
  std::vector<double> degree((size_t)graph.num_nodes);
  for (int64_t v = 0; v < graph.num_nodes; ++v) degree[v] = (double)graph.degree(v);
  return degree;
}

// The nodes not in `sq` (ascending), ascending.
std::vector<int32_t> complement(const std::vector<int32_t>& sq, int64_t num_nodes) {
  std::vector<int32_t> rest;
  rest.reserve((size_t)(num_nodes - (int64_t)sq.size()));
  size_t j = 0;
  for (int64_t v = 0; v < num_nodes; ++v) {
    if (j < sq.size() && sq[j] == v) ++j;
    else rest.push_back((int32_t)v);
  }
  return rest;
}

// min(s, |nodes|) of `nodes`, uniformly without replacement, in their order (selection sampling,
// Knuth's algorithm S: one pass, so the rows are read in ascending order).
std::vector<int32_t> sample_nodes(const std::vector<int32_t>& nodes, int64_t s, uint64_t seed) {
  const int64_t n = (int64_t)nodes.size();
  if (s >= n) return nodes;
  Rng rng(seed);
  std::vector<int32_t> out;
  out.reserve((size_t)s);
  for (int64_t i = 0; i < n && (int64_t)out.size() < s; ++i)
    if ((int64_t)rng.below((uint64_t)(n - i)) < s - (int64_t)out.size()) out.push_back(nodes[i]);
  return out;
}

// Bit v % 64 of word v / 64 set for every v in `sq`.
Tensor node_mask(const std::vector<int32_t>& sq, int64_t num_nodes) {
  Tensor mask = Tensor::zeros({(num_nodes + 63) / 64}, DType::i64);
  uint64_t* w = (uint64_t*)mask.raw();
  for (int32_t v : sq) w[v >> 6] |= uint64_t(1) << (v & 63);
  return mask;
}

struct PqLevel {
  Tensor codebooks, scales, codes;  // scales: 8-bit codebooks only
  int64_t centroids = 0;
};

// The level's codebooks as the file stores them. 8 bits: the quantizer the rows are then encoded
// with is the one the 8-bit values decode to, so each code is the nearest of what the gather gives.
ProductQuantizer store_codebooks(const ProductQuantizer& trained, int bits, PqLevel& level) {
  const int64_t M = trained.subvectors(), ds = trained.sub_dim(), K = trained.centroids();
  if (bits == 32) {
    level.codebooks = Tensor::empty({M, K, ds});
    std::copy(trained.codebooks().begin(), trained.codebooks().end(), level.codebooks.f32());
    return trained;
  }
  const Int8Codebooks q = quantize_codebooks(trained);
  level.codebooks = Tensor::empty({M, K, ds}, DType::i8);
  std::copy(q.values.begin(), q.values.end(), level.codebooks.data<int8_t>());
  level.scales = Tensor::empty({M, ds});
  std::copy(q.scales.begin(), q.scales.end(), level.scales.f32());
  return dequantize_codebooks(trained.dim(), M, K, q);
}

PqLevel compress_pq(const Tensor& features, const std::vector<int32_t>& nodes, const BiFeatOptions& opt,
                    BiFeatReport& report) {
  const int64_t D = features.dim(1), M = opt.pq_subvectors, n = (int64_t)nodes.size();
  PqLevel level;
  level.centroids = std::clamp<int64_t>(n, 1, ProductQuantizer::kMaxCentroids);
  level.codes = Tensor::empty({n, M}, DType::u8);
  if (n == 0) {  // every node is in the SQ level: a zero codebook keeps the file's shapes uniform
    store_codebooks(ProductQuantizer(D, M, level.centroids, std::vector<float>((size_t)(level.centroids * D))),
                    opt.codebook_bits, level);
    return level;
  }
  auto t0 = Clock::now();
  const std::vector<int32_t> sample = sample_nodes(nodes, opt.kmeans_sample, opt.seed);
  note(opt, str("k-means: ", M, " sub-spaces of ", D / M, ", ", level.centroids, " centroids, on ", sample.size(),
                " of ", n, " PQ rows, ", opt.kmeans_iters, " iterations at most"));
  std::vector<float> rows(sample.size() * (size_t)D);
  const float* x = features.data<float>();
  for (size_t i = 0; i < sample.size(); ++i) std::memcpy(&rows[i * D], x + (int64_t)sample[i] * D, (size_t)D * sizeof(float));
  PqOptions po{M, level.centroids, opt.kmeans_iters, opt.seed, opt.progress};
  const ProductQuantizer pq =
      store_codebooks(ProductQuantizer::train(rows.data(), (int64_t)sample.size(), D, po), opt.codebook_bits, level);
  report.seconds_kmeans = seconds_since(t0);
  t0 = Clock::now();
  uint8_t* codes = level.codes.data<uint8_t>();
  for (int64_t r0 = 0; r0 < n; r0 += kEncodeNoteRows) {
    const int64_t count = std::min(kEncodeNoteRows, n - r0);
    pq.encode(x, D, nodes.data() + r0, count, codes + r0 * M);
    note(opt, str("PQ encoding: ", r0 + count, " of ", n, " rows"));
  }
  report.seconds_pq_encode = seconds_since(t0);
  return level;
}

std::map<std::string, std::string> file_metadata(int64_t N, int64_t D, const BiFeatOptions& opt, int64_t centroids) {
  return {{"format", BiFeatStore::kFormat},
          {"version", BiFeatStore::kVersion},
          {"num_nodes", std::to_string(N)},
          {"dim", std::to_string(D)},
          {"sq_bits", std::to_string(opt.sq_bits)},
          {"pq_subvectors", std::to_string(opt.pq_subvectors)},
          {"pq_centroids", std::to_string(centroids)},
          {"pq_codebook_bits", std::to_string(opt.codebook_bits)},
          {"sq_fraction", format_number("%.17g", opt.sq_fraction)},
          {"importance", opt.importance.empty() ? "degree" : "given"},
          {"kmeans_iters", std::to_string(opt.kmeans_iters)},
          {"kmeans_sample", std::to_string(opt.kmeans_sample)},
          {"seed", std::to_string(opt.seed)}};
}

// Squared error, squared norm, cosine sum and counted rows of one level over one chunk.
struct ErrorSums {
  double err = 0, norm = 0, cosine = 0;
  int64_t cosine_rows = 0;
  void add(const ErrorSums& o) {
    err += o.err, norm += o.norm, cosine += o.cosine, cosine_rows += o.cosine_rows;
  }
};

void add_row(ErrorSums& s, const float* x, const float* y, int64_t D) {
  double e = 0, xx = 0, yy = 0, xy = 0;
  for (int64_t d = 0; d < D; ++d) {
    e += ((double)x[d] - y[d]) * ((double)x[d] - y[d]);
    xx += (double)x[d] * x[d], yy += (double)y[d] * y[d], xy += (double)x[d] * y[d];
  }
  s.err += e, s.norm += xx;
  if (xx > 0) s.cosine += yy > 0 ? xy / std::sqrt(xx * yy) : 0.0, ++s.cosine_rows;
}

void fill_errors(LevelReport& r, const ErrorSums& s) {
  r.relative_mse = s.norm > 0 ? s.err / s.norm : 0.0;
  r.mean_cosine = s.cosine_rows > 0 ? s.cosine / (double)s.cosine_rows : 1.0;
}

}  // namespace

std::vector<int32_t> select_sq_nodes(const std::vector<double>& importance, double fraction) {
  GANNET_CHECK(fraction >= 0 && fraction <= 1, "bifeat: sq fraction ", fraction, " is not in [0, 1]");
  const int64_t n = (int64_t)importance.size(), k = std::llround(fraction * (double)n);
  std::vector<int32_t> order((size_t)n);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
    return importance[a] != importance[b] ? importance[a] > importance[b] : a < b;
  });
  order.resize((size_t)k);
  std::sort(order.begin(), order.end());
  return order;
}

BiFeatReport compress_features(const Tensor& features, const CsrGraph& graph, const std::string& path,
                               const BiFeatOptions& opt) {
  check_options(features, graph, opt);
  const int64_t N = graph.num_nodes, D = features.dim(1);
  BiFeatReport report;
  const std::vector<int32_t> sq_nodes = select_sq_nodes(importance_of(graph, opt), opt.sq_fraction);
  const std::vector<int32_t> pq_nodes = complement(sq_nodes, N);
  auto t0 = Clock::now();
  note(opt, str("log-SQ: ", sq_nodes.size(), " nodes at ", opt.sq_bits, " bits"));
  const float* x = features.data<float>();
  const LogScalarQuantizer sq =
      LogScalarQuantizer::fit(x, D, D, sq_nodes.data(), (int64_t)sq_nodes.size(), opt.sq_bits);
  Tensor sq_codes = Tensor::empty({(int64_t)sq_nodes.size(), sq.row_bytes()}, DType::u8);
  sq.encode(x, D, sq_nodes.data(), (int64_t)sq_nodes.size(), sq_codes.data<uint8_t>());
  Tensor ranges = Tensor::empty({D, 2});
  for (int64_t d = 0; d < D; ++d) ranges.f32()[2 * d] = sq.lo()[d], ranges.f32()[2 * d + 1] = sq.step()[d];
  report.seconds_sq = seconds_since(t0);
  const PqLevel pq = compress_pq(features, pq_nodes, opt, report);
  std::vector<std::pair<std::string, Tensor>> tensors = {{"sq_nodes", node_mask(sq_nodes, N)},
                                                         {"sq_log2_range", ranges},
                                                         {"sq_codes", sq_codes},
                                                         {"pq_codebooks", pq.codebooks},
                                                         {"pq_codes", pq.codes}};
  if (opt.codebook_bits == 8) tensors.emplace_back("pq_codebook_scales", pq.scales);
  io::save_safetensors(path, tensors, file_metadata(N, D, opt, pq.centroids));
  note(opt, str("wrote ", path, "; measuring the reconstruction of every node"));
  measure_reconstruction(BiFeatStore::open(path), features, report);
  return report;
}

void measure_reconstruction(const BiFeatStore& store, const Tensor& features, BiFeatReport& report) {
  const int64_t N = store.num_nodes(), D = store.dim();
  GANNET_CHECK(features.dtype() == DType::f32 && features.ndim() == 2 && features.dim(0) == N && features.dim(1) == D,
               "bifeat: features ", features.describe(), " do not match the store's [", N, ", ", D, "]");
  const int64_t chunks = (N + kMeasureChunk - 1) / kMeasureChunk;
  std::vector<ErrorSums> sq_sums((size_t)chunks), pq_sums((size_t)chunks);  // summed in order: deterministic
  const float* x = features.data<float>();
#pragma omp parallel
  {
    std::vector<float> out((size_t)(kMeasureChunk * D));
    std::vector<int32_t> ids((size_t)kMeasureChunk);
#pragma omp for schedule(dynamic, 1)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t v0 = c * kMeasureChunk, n = std::min(kMeasureChunk, N - v0);
      std::iota(ids.begin(), ids.begin() + n, (int32_t)v0);
      bifeat_decode_rows(store.tables(), ids.data(), n, out.data());  // the gather's decode, on this thread
      for (int64_t i = 0; i < n; ++i)
        add_row(store.in_sq_level(v0 + i) ? sq_sums[c] : pq_sums[c], x + (v0 + i) * D, out.data() + i * D, D);
    }
  }
  ErrorSums sq, pq, all;
  for (int64_t c = 0; c < chunks; ++c) sq.add(sq_sums[c]), pq.add(pq_sums[c]);
  all.add(sq), all.add(pq);
  const BiFeatStore::Bytes b = store.bytes_by_part();
  const double row_bytes = (double)D * sizeof(float);
  report.path = store.path();
  report.num_nodes = N, report.dim = D;
  report.sq = {store.sq_rows(), b.sq, b.sq > 0 ? store.sq_rows() * row_bytes / (double)b.sq : 0.0, 0, 0};
  report.pq = {store.pq_rows(), b.pq, b.pq > 0 ? store.pq_rows() * row_bytes / (double)b.pq : 0.0, 0, 0};
  report.all = {N, store.bytes(), N * row_bytes / (double)store.bytes(), 0, 0};
  report.map_bytes = b.map, report.other_bytes = b.other;
  fill_errors(report.sq, sq), fill_errors(report.pq, pq), fill_errors(report.all, all);
}

}  // namespace gannet::gnn
