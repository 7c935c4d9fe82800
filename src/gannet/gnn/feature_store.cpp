#include "gannet/gnn/feature_store.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>

#include "gannet/core/error.h"
#include "gannet/core/parse_number.h"

namespace gannet::gnn {

namespace {

// Rows per work item of a gather: fixed, so that any thread count splits a batch the same way.
constexpr int64_t kGatherChunk = 256;
// Gathers with fewer output floats than this run on the calling thread.
constexpr int64_t kParallelFloats = int64_t(1) << 15;

void check_nodes(const char* what, const int32_t* nodes, int64_t n, int64_t num_nodes) {
  GANNET_CHECK(n >= 0 && (n == 0 || nodes != nullptr), what, ": bad batch of ", n, " nodes");
  for (int64_t i = 0; i < n; ++i)
    GANNET_CHECK(nodes[i] >= 0 && nodes[i] < num_nodes, what, ": node id ", nodes[i], " at position ", i,
                 " is outside [0, ", num_nodes, ")");
}

[[noreturn]] void bad_file(const std::string& path, const std::string& what) { fail(path + ": " + what); }

int64_t meta_int(const io::SafeTensors& f, const std::string& key) {
  auto it = f.metadata().find(key);
  if (it == f.metadata().end()) bad_file(f.path(), str("metadata has no '", key, "'"));
  return parse_int64(it->second, f.path() + ": metadata " + key);
}

struct Header {
  int64_t num_nodes, dim, sq_bits, subvectors, centroids, codebook_bits;
};

Header read_header(const io::SafeTensors& f) {
  auto meta = [&](const std::string& key) {
    auto it = f.metadata().find(key);
    return it == f.metadata().end() ? std::string("(none)") : it->second;
  };
  if (meta("format") != BiFeatStore::kFormat)
    bad_file(f.path(), str("metadata format is ", quote_text(meta("format")), ", expected '", BiFeatStore::kFormat, "'"));
  const std::string version = meta("version");
  if (version != "1" && version != BiFeatStore::kVersion)
    bad_file(f.path(), str("format version ", quote_text(version), " is not supported (this build reads 1 and ",
                           BiFeatStore::kVersion, ")"));
  Header h{meta_int(f, "num_nodes"),     meta_int(f, "dim"),          meta_int(f, "sq_bits"),
           meta_int(f, "pq_subvectors"), meta_int(f, "pq_centroids"),
           version == "1" ? 32 : meta_int(f, "pq_codebook_bits")};  // version 1: f32 codebooks
  if (h.num_nodes < 0 || h.num_nodes > INT32_MAX) bad_file(f.path(), str("num_nodes ", h.num_nodes, " is out of range"));
  if (h.sq_bits != 8 && h.sq_bits != 4) bad_file(f.path(), str("sq_bits is ", h.sq_bits, ", expected 8 or 4"));
  if (h.dim < 1 || h.subvectors < 1 || h.dim % h.subvectors != 0)
    bad_file(f.path(), str("dim ", h.dim, " is not a positive multiple of pq_subvectors ", h.subvectors));
  if (h.centroids < 1 || h.centroids > ProductQuantizer::kMaxCentroids)
    bad_file(f.path(), str("pq_centroids is ", h.centroids, ", expected 1..", ProductQuantizer::kMaxCentroids));
  if (h.codebook_bits != 32 && h.codebook_bits != 8)
    bad_file(f.path(), str("pq_codebook_bits is ", h.codebook_bits, ", expected 32 or 8"));
  return h;
}

// The rank of each word of the node map (set bits before it); checks that no bit at or above
// num_nodes is set. Returns the total of set bits through `total`.
std::vector<uint32_t> rank_node_map(const std::string& path, const uint64_t* mask, int64_t words, int64_t num_nodes,
                                    int64_t& total) {
  std::vector<uint32_t> rank((size_t)words);
  total = 0;
  for (int64_t w = 0; w < words; ++w) {
    rank[w] = (uint32_t)total;
    total += __builtin_popcountll(mask[w]);
  }
  const int64_t tail = num_nodes % 64;
  if (words > 0 && tail != 0 && (mask[words - 1] >> tail) != 0)
    bad_file(path, str("sq_nodes marks nodes at or above num_nodes ", num_nodes));
  return rank;
}

void check_pq_codes(const std::string& path, const Tensor& codes, int64_t centroids) {
  if (centroids == ProductQuantizer::kMaxCentroids) return;  // every byte is a valid code
  const uint8_t* c = codes.data<uint8_t>();
  const int64_t n = codes.numel();
  std::atomic<int64_t> bad{n};
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    if (c[i] >= centroids) {
      int64_t seen = bad.load();
      while (i < seen && !bad.compare_exchange_weak(seen, i)) {}
    }
  if (bad.load() < n) {
    const int64_t i = bad.load(), M = codes.dim(1);
    bad_file(path, str("pq_codes row ", i / M, " sub-space ", i % M, " holds code ", (int)c[i], ", not below pq_centroids ",
                       centroids));
  }
}

void check_sq_codes(const std::string& path, const Tensor& codes, const LogScalarQuantizer& sq) {
  const uint8_t* c = codes.data<uint8_t>();
  const int64_t rows = codes.dim(0), rb = sq.row_bytes();
  std::atomic<int64_t> bad_row{rows};
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    if (sq.first_bad_code(c + r * rb) >= 0) {
      int64_t seen = bad_row.load();
      while (r < seen && !bad_row.compare_exchange_weak(seen, r)) {}
    }
  if (bad_row.load() < rows) {
    const int64_t r = bad_row.load(), col = sq.first_bad_code(c + r * rb);
    bad_file(path, col == sq.dim() ? str("sq_codes row ", r, " has a nonzero padding nibble")
                                   : str("sq_codes row ", r, " column ", col, " holds a negative zero code"));
  }
}

// The PQ codebooks, f32 or 8-bit with their scales, checked: finite values and scales >= 0, and
// 8-bit values in [-127, 127] (the quantizer never writes -128, so a file holding it is damaged).
struct PqCodebooks {
  Tensor values, scales;  // scales: 8-bit only
};

PqCodebooks read_pq_codebooks(const io::SafeTensors& f, const Header& h) {
  const int64_t ds = h.dim / h.subvectors;
  PqCodebooks c;
  if (h.codebook_bits == 32) {
    c.values = f.get("pq_codebooks", DType::f32, {h.subvectors, h.centroids, ds});
    const float* cb = c.values.data<float>();
    for (int64_t i = 0; i < c.values.numel(); ++i)
      if (!std::isfinite(cb[i])) bad_file(f.path(), str("pq_codebooks holds ", cb[i], " at element ", i));
    return c;
  }
  c.values = f.get("pq_codebooks", DType::i8, {h.subvectors, h.centroids, ds});
  c.scales = f.get("pq_codebook_scales", DType::f32, {h.subvectors, ds});
  const int8_t* q = c.values.data<int8_t>();
  for (int64_t i = 0; i < c.values.numel(); ++i)
    if (q[i] == INT8_MIN) bad_file(f.path(), str("pq_codebooks holds -128 at element ", i, ", outside [-127, 127]"));
  const float* sc = c.scales.data<float>();
  for (int64_t i = 0; i < c.scales.numel(); ++i)
    if (!std::isfinite(sc[i]) || sc[i] < 0)
      bad_file(f.path(), str("pq_codebook_scales holds ", sc[i], " at element ", i, ", expected a finite value >= 0"));
  return c;
}

LogScalarQuantizer read_sq_ranges(const io::SafeTensors& f, const Header& h) {
  const Tensor range = f.get("sq_log2_range", DType::f32, {h.dim, 2});
  const float* r = range.data<float>();
  std::vector<float> lo((size_t)h.dim), step((size_t)h.dim);
  for (int64_t d = 0; d < h.dim; ++d) lo[d] = r[2 * d], step[d] = r[2 * d + 1];
  try {
    return LogScalarQuantizer((int)h.sq_bits, std::move(lo), std::move(step));
  } catch (const Error& e) {
    bad_file(f.path(), str("sq_log2_range: ", e.what()));
  }
}

}  // namespace

RawFeatureStore::RawFeatureStore(Tensor features) : features_(std::move(features)) {
  GANNET_CHECK(features_.dtype() == DType::f32 && features_.ndim() == 2, "raw feature store: features are ",
               features_.describe(), ", expected f32 [N, D]");
  // Gathers read scattered rows: tell the kernel, so that a matrix mapped from a file larger than
  // memory is paged in a page per row rather than with read-ahead around each (a hint only).
  const uintptr_t page = (uintptr_t)::sysconf(_SC_PAGESIZE);
  const uintptr_t begin = (uintptr_t)features_.raw() & ~(page - 1);
  const uintptr_t end = (uintptr_t)features_.raw() + features_.nbytes();
  if (end > begin) ::madvise((void*)begin, end - begin, MADV_RANDOM);
}

void RawFeatureStore::gather(const int32_t* nodes, int64_t n, float* out) const {
  check_nodes("feature gather", nodes, n, num_nodes());
  const int64_t D = dim();
  const float* x = features_.data<float>();
#pragma omp parallel for schedule(static) if (n * D >= kParallelFloats)
  for (int64_t i = 0; i < n; ++i) std::memcpy(out + i * D, x + (int64_t)nodes[i] * D, (size_t)D * sizeof(float));
}

BiFeatStore BiFeatStore::open(const std::string& path) {
  io::SafeTensors f = io::SafeTensors::open(path);
  const Header h = read_header(f);
  BiFeatStore s(f, read_sq_ranges(f, h));
  const int64_t words = (h.num_nodes + 63) / 64;
  s.sq_nodes_ = f.get("sq_nodes", DType::i64, {words});
  int64_t n_sq = 0;
  s.sq_rank_ = rank_node_map(path, (const uint64_t*)s.sq_nodes_.raw(), words, h.num_nodes, n_sq);
  s.sq_codes_ = f.get("sq_codes", DType::u8, {n_sq, s.sq_.row_bytes()});
  PqCodebooks cb = read_pq_codebooks(f, h);
  s.pq_codebooks_ = std::move(cb.values);
  s.pq_scales_ = std::move(cb.scales);
  s.pq_codes_ = f.get("pq_codes", DType::u8, {h.num_nodes - n_sq, h.subvectors});
  check_pq_codes(path, s.pq_codes_, h.centroids);
  check_sq_codes(path, s.sq_codes_, s.sq_);
  s.file_bytes_ = (int64_t)std::filesystem::file_size(path);
  BiFeatTables& t = s.tables_;
  t.num_nodes = h.num_nodes;
  t.dim = h.dim;
  t.sq_mask = (const uint64_t*)s.sq_nodes_.raw();
  t.sq_rank = s.sq_rank_.data();
  t.sq_bits = (int)h.sq_bits;
  t.sq_row_bytes = s.sq_.row_bytes();
  t.sq_codes = s.sq_codes_.data<uint8_t>();
  t.sq_magnitudes = s.sq_.magnitudes().data();
  t.pq_subvectors = h.subvectors;
  t.pq_centroids = h.centroids;
  t.pq_codes = s.pq_codes_.data<uint8_t>();
  t.pq_codebook_bits = (int)h.codebook_bits;
  if (h.codebook_bits == 8) {
    t.pq_codebooks_i8 = s.pq_codebooks_.data<int8_t>();
    t.pq_scales = s.pq_scales_.data<float>();
  } else {
    t.pq_codebooks = s.pq_codebooks_.data<float>();
  }
  return s;
}

BiFeatStore::Bytes BiFeatStore::bytes_by_part() const {
  Bytes b;
  const int64_t ranges = 2 * dim() * (int64_t)sizeof(float);
  b.sq = (int64_t)sq_codes_.nbytes() + ranges +
         (int64_t)(sq_.lo().size() + sq_.step().size() + sq_.magnitudes().size()) * (int64_t)sizeof(float);
  const int64_t scales = pq_scales_.defined() ? (int64_t)pq_scales_.nbytes() : 0;
  b.pq = (int64_t)(pq_codes_.nbytes() + pq_codebooks_.nbytes()) + scales;
  b.map = (int64_t)sq_nodes_.nbytes() + (int64_t)(sq_rank_.size() * sizeof(uint32_t));
  b.other = file_bytes_ - (int64_t)(sq_codes_.nbytes() + pq_codes_.nbytes() + pq_codebooks_.nbytes() +
                                    sq_nodes_.nbytes()) - ranges - scales;
  return b;
}

int64_t BiFeatStore::bytes() const {
  const Bytes b = bytes_by_part();
  return b.sq + b.pq + b.map + b.other;
}

ProductQuantizer BiFeatStore::pq() const {
  if (tables_.pq_codebook_bits == 8) {
    const int8_t* q = pq_codebooks_.data<int8_t>();
    const float* sc = pq_scales_.data<float>();
    Int8Codebooks c{std::vector<int8_t>(q, q + pq_codebooks_.numel()), std::vector<float>(sc, sc + pq_scales_.numel())};
    return dequantize_codebooks(dim(), tables_.pq_subvectors, tables_.pq_centroids, c);
  }
  const float* cb = pq_codebooks_.data<float>();
  return ProductQuantizer(dim(), tables_.pq_subvectors, tables_.pq_centroids,
                          std::vector<float>(cb, cb + pq_codebooks_.numel()));
}

void BiFeatStore::gather(const int32_t* nodes, int64_t n, float* out) const {
  check_nodes("feature gather", nodes, n, num_nodes());
  const int64_t D = dim(), chunks = (n + kGatherChunk - 1) / kGatherChunk;
#pragma omp parallel for schedule(static) if (n * D >= kParallelFloats && chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t i0 = c * kGatherChunk;
    bifeat_decode_rows(tables_, nodes + i0, std::min(kGatherChunk, n - i0), out + i0 * D);
  }
}

std::string default_bifeat_path(const std::string& data_dir) {
  return (std::filesystem::path(data_dir) / "features.bifeat.safetensors").string();
}

std::unique_ptr<FeatureStore> open_feature_store(const GraphDataset& data, const std::string& features) {
  if (features == "raw") return std::make_unique<RawFeatureStore>(data.features);
  const std::string path = features == "bifeat" ? default_bifeat_path(data.dir) : features;
  auto store = std::make_unique<BiFeatStore>(BiFeatStore::open(path));
  GANNET_CHECK(store->num_nodes() == data.num_nodes() && store->dim() == data.feature_dim(), path, ": holds ",
               store->num_nodes(), " nodes of ", store->dim(), " features, but data set ", data.dir, " has ",
               data.num_nodes(), " of ", data.feature_dim());
  return store;
}

}  // namespace gannet::gnn
