#include "gannet/data/difficulty.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>

#include <nlohmann/json.hpp>

#include "gannet/core/atomic_file.h"
#include "gannet/core/checked_math.h"
#include "gannet/core/escape.h"
#include "gannet/core/error.h"
#include "gannet/core/mapped_file.h"
#include "gannet/core/parallel_errors.h"

namespace gannet::data {

namespace {

constexpr char kMagic[8] = {'G', 'N', 'D', 'I', 'D', 'X', '0', '1'};
constexpr uint32_t kVersion = 1;
enum Kind : uint32_t { kIndexToSample = 1, kIndexToMetric = 2, kPercentiles = 3 };

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t kind;
  uint64_t count;
  uint64_t num_samples;
  uint64_t seq_len;
  uint64_t token_count;
  char metric[48];
};
static_assert(sizeof(Header) == 96, "difficulty index header is 96 bytes");

int64_t leading_document_length(const SampleView& s) {
  for (int64_t t = 0; t < s.length; ++t)
    if (s.tokens[t] == s.eos_id) return t + 1;
  return s.length;
}

double rarity(const SampleView& s, int64_t n) {
  double sum = 0;
  for (int64_t t = 0; t < n; ++t) sum += (*s.neg_log_p)[(size_t)s.tokens[t]];
  return sum;
}

struct Registry {
  std::mutex mu;
  std::map<std::string, DifficultyMetric> metrics;
  Registry() {
    metrics["seqlen"] = [](const SampleView& s) { return (double)leading_document_length(s); };
    metrics["vocabularyrarity"] = [](const SampleView& s) { return rarity(s, s.length); };
    metrics["seqlen_vocabularyrarity"] = [](const SampleView& s) { return rarity(s, leading_document_length(s)); };
  }
};

Registry& registry() {
  static Registry r;
  return r;
}

DifficultyMetric find_metric(const std::string& name) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.metrics.find(name);
  if (it != r.metrics.end()) return it->second;
  std::string known;
  for (const auto& [k, v] : r.metrics) known += (known.empty() ? "" : ", ") + k;
  fail(str("unknown difficulty metric '", name, "' (known: ", known, ")"));
}

void write_index_file(const std::string& path, Kind kind, const void* data, size_t elem_bytes, uint64_t count,
                      uint64_t num_samples, uint64_t seq_len, uint64_t token_count, const std::string& metric) {
  Header h{};
  std::memcpy(h.magic, kMagic, 8);
  h.version = kVersion;
  h.kind = kind;
  h.count = count;
  h.num_samples = num_samples;
  h.seq_len = seq_len;
  h.token_count = token_count;
  std::memcpy(h.metric, metric.data(), metric.size());
  write_file_atomic(path, [&](std::ostream& os) {
    os.write(reinterpret_cast<const char*>(&h), sizeof h);
    os.write(static_cast<const char*>(data), (std::streamsize)(count * elem_bytes));
  });
}

// Maps an index file and checks its header; returns the header and the mapping.
std::shared_ptr<MappedFile> open_index_file(const std::string& path, Kind kind, Header& h) {
  std::shared_ptr<MappedFile> m = MappedFile::open(path);
  GANNET_CHECK(m->size() >= sizeof(Header), "difficulty index ", path, " is truncated: ", m->size(),
               " bytes, shorter than its 96-byte header");
  std::memcpy(&h, m->data(), sizeof h);
  GANNET_CHECK(std::memcmp(h.magic, kMagic, 8) == 0, "difficulty index ", path,
               ": bad magic (not written by `gannet data analyze`)");
  GANNET_CHECK(h.version == kVersion, "difficulty index ", path, ": unsupported version ", h.version);
  GANNET_CHECK(h.metric[47] == '\0', "difficulty index ", path, ": metric name '",
               escape_bytes(std::string_view(h.metric, 48)), "' is not terminated");
  static const char* kKindNames[] = {"?", "index_to_sample", "index_to_metric", "percentiles"};
  GANNET_CHECK(h.kind == kind, "difficulty index ", path, ": is a ", h.kind <= 3 ? kKindNames[h.kind] : "?",
               " file, expected ", kKindNames[kind]);
  const uint64_t want = kind == kPercentiles ? 101 : h.num_samples;
  GANNET_CHECK(h.count == want, "difficulty index ", path, ": holds ", h.count, " entries, expected ", want);
  const auto payload = mul_no_overflow<uint64_t>(h.count, 8);
  const auto expected = payload ? add_no_overflow<uint64_t>(sizeof(Header), *payload) : std::nullopt;
  GANNET_CHECK(expected, "difficulty index ", path, ": entry count ", h.count, " is too large");
  GANNET_CHECK(m->size() == *expected, "difficulty index ", path, ": size mismatch: ", m->size(),
               " bytes, header says ", *expected);
  return m;
}

}  // namespace

void register_difficulty_metric(const std::string& name, DifficultyMetric fn) {
  GANNET_CHECK(!name.empty() && name.size() < 48, "difficulty metric name '", name, "' must have 1 to 47 characters");
  for (char c : name)
    GANNET_CHECK(std::isalnum((unsigned char)c) || c == '_', "difficulty metric name '", name,
                 "' may hold only letters, digits and '_'");
  GANNET_CHECK(fn != nullptr, "difficulty metric '", name, "': no function");
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.metrics[name] = std::move(fn);
}

std::vector<std::string> difficulty_metric_names() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> out;
  for (const auto& [k, v] : r.metrics) out.push_back(k);
  return out;
}

int64_t difficulty_sample_count(const TokenFile& file, int64_t seq_len) {
  GANNET_CHECK(seq_len > 0, "difficulty analysis: seq_len must be positive, got ", seq_len);
  return file.size() > seq_len ? (file.size() - 1) / seq_len : 0;
}

std::vector<double> unigram_neg_log_p(const TokenFile& file) {
  const int64_t N = file.size();
  // Per-thread counts cover the tokens the file holds, not the vocabulary its header declares.
  const int used = file.max_token() + 1;
  std::vector<int64_t> counts((size_t)used, 0);
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (N + kChunk - 1) / kChunk;
  ParallelErrors errors;
#pragma omp parallel
  {
    std::vector<int64_t> local;
    std::vector<int32_t> buf;
    errors.run([&] {
      local.assign((size_t)used, 0);
      buf.resize(kChunk);
    });
#pragma omp for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      errors.run([&] {
        const int64_t begin = c * kChunk, n = std::min(kChunk, N - begin);
        file.read(begin, n, buf.data());
        for (int64_t i = 0; i < n; ++i) ++local[(size_t)buf[i]];
      });
    }
#pragma omp critical
    errors.run([&] {
      for (int v = 0; v < used; ++v) counts[(size_t)v] += local[(size_t)v];
    });
  }
  errors.rethrow();
  std::vector<double> out((size_t)used, std::numeric_limits<double>::infinity());
  for (int v = 0; v < used; ++v)
    if (counts[(size_t)v]) out[(size_t)v] = -std::log((double)counts[(size_t)v] / (double)N);
  return out;
}

std::vector<double> compute_difficulty(const TokenFile& file, int64_t seq_len, const std::string& metric,
                                       int32_t eos_id) {
  DifficultyMetric fn = find_metric(metric);
  const int64_t n = difficulty_sample_count(file, seq_len);
  GANNET_CHECK(n > 0, "difficulty analysis: ", file.path(), " holds ", file.size(),
               " tokens, fewer than one sample of ", seq_len + 1);
  const std::vector<double> nlp = unigram_neg_log_p(file);
  std::vector<double> values((size_t)n);
  ParallelErrors errors;
#pragma omp parallel
  {
    std::vector<int32_t> buf;
    errors.run([&] { buf.resize((size_t)seq_len); });
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      errors.run([&] {
        file.read(i * seq_len, seq_len, buf.data());
        values[(size_t)i] = fn(SampleView{buf.data(), seq_len, i, eos_id, &nlp});
      });
    }
  }
  try {
    errors.rethrow();
  } catch (const std::exception& e) {
    fail(str("difficulty metric '", metric, "': ", e.what()));
  }
  for (int64_t i = 0; i < n; ++i)
    GANNET_CHECK(std::isfinite(values[(size_t)i]), "difficulty metric '", metric, "' gave ", values[(size_t)i],
                 " for sample ", i);
  return values;
}

std::string index_to_sample_path(const std::string& dir, const std::string& metric) {
  return (std::filesystem::path(dir) / (metric + "_index_to_sample.bin")).string();
}
std::string index_to_metric_path(const std::string& dir, const std::string& metric) {
  return (std::filesystem::path(dir) / (metric + "_index_to_metric.bin")).string();
}
std::string percentiles_path(const std::string& dir, const std::string& metric) {
  return (std::filesystem::path(dir) / (metric + "_percentiles.bin")).string();
}

AnalyzeSummary analyze_difficulty(const AnalyzeOptions& o) {
  GANNET_CHECK(!o.metrics.empty(), "data analyze: no metrics given");
  for (const auto& m : o.metrics) find_metric(m);  // fail on a bad name before any work
  TokenFile file = TokenFile::open(o.token_file);
  GANNET_CHECK(o.eos_id >= 0 && o.eos_id < file.vocab_size(), "data analyze: --eos-id ", o.eos_id,
               " is outside the vocabulary of ", o.token_file, " (", file.vocab_size(), ")");
  std::filesystem::create_directories(o.out_dir);
  AnalyzeSummary summary;
  nlohmann::json meta = {{"token_file", o.token_file}, {"token_count", file.size()}, {"seq_len", o.seq_len},
                         {"eos_id", o.eos_id},         {"metrics", nlohmann::json::object()}};
  for (const std::string& metric : o.metrics) {
    std::vector<double> v = compute_difficulty(file, o.seq_len, metric, o.eos_id);
    const int64_t n = (int64_t)v.size();
    summary.num_samples = n;
    std::vector<int64_t> ids((size_t)n);
    std::iota(ids.begin(), ids.end(), 0);
    std::stable_sort(ids.begin(), ids.end(), [&](int64_t a, int64_t b) { return v[(size_t)a] < v[(size_t)b]; });
    std::vector<double> sorted((size_t)n), pct(101);
    for (int64_t i = 0; i < n; ++i) sorted[(size_t)i] = v[(size_t)ids[(size_t)i]];
    for (int p = 0; p <= 100; ++p) {
      int64_t k = (p * n + 99) / 100;  // ceil(p * n / 100) samples admitted
      pct[(size_t)p] = sorted[(size_t)std::max<int64_t>(0, k - 1)];
    }
    const std::string f1 = index_to_sample_path(o.out_dir, metric), f2 = index_to_metric_path(o.out_dir, metric),
                      f3 = percentiles_path(o.out_dir, metric);
    write_index_file(f1, kIndexToSample, ids.data(), 8, (uint64_t)n, (uint64_t)n, (uint64_t)o.seq_len,
                     (uint64_t)file.size(), metric);
    write_index_file(f2, kIndexToMetric, sorted.data(), 8, (uint64_t)n, (uint64_t)n, (uint64_t)o.seq_len,
                     (uint64_t)file.size(), metric);
    write_index_file(f3, kPercentiles, pct.data(), 8, 101, (uint64_t)n, (uint64_t)o.seq_len, (uint64_t)file.size(),
                     metric);
    summary.files.insert(summary.files.end(), {f1, f2, f3});
    meta["metrics"][metric] = {{"index_to_sample_path", f1}, {"index_to_metric_path", f2},
                               {"percentiles_path", f3},     {"num_samples", n},
                               {"min", sorted.front()},      {"median", pct[50]},
                               {"max", sorted.back()}};
  }
  const std::string summary_path = (std::filesystem::path(o.out_dir) / "analysis.json").string();
  write_file_atomic(summary_path, meta.dump(2) + "\n");
  summary.files.push_back(summary_path);
  return summary;
}

DifficultyIndex DifficultyIndex::open(const std::string& index_to_sample, const std::string& index_to_metric) {
  Header hs, hm;
  std::shared_ptr<MappedFile> ms = open_index_file(index_to_sample, kIndexToSample, hs);
  std::shared_ptr<MappedFile> mm = open_index_file(index_to_metric, kIndexToMetric, hm);
  GANNET_CHECK(std::strcmp(hs.metric, hm.metric) == 0 && hs.num_samples == hm.num_samples &&
                   hs.seq_len == hm.seq_len && hs.token_count == hm.token_count,
               "difficulty index ", index_to_sample, " (metric ", escape_bytes(hs.metric), ", ", hs.num_samples,
               " samples) and ", index_to_metric, " (metric ", escape_bytes(hm.metric), ", ", hm.num_samples,
               " samples) do not belong together");
  GANNET_CHECK(hs.seq_len > 0 && hs.seq_len <= (uint64_t)INT64_MAX && hs.token_count <= (uint64_t)INT64_MAX &&
                   hs.num_samples == (hs.token_count > hs.seq_len ? (hs.token_count - 1) / hs.seq_len : 0),
               "difficulty index ", index_to_sample, ": ", hs.num_samples, " samples do not fit seq_len ",
               hs.seq_len, " over ", hs.token_count, " tokens");
  DifficultyIndex d;
  d.ids_ = reinterpret_cast<const int64_t*>(ms->data() + sizeof(Header));
  d.values_ = reinterpret_cast<const double*>(mm->data() + sizeof(Header));
  d.n_ = (int64_t)hs.num_samples;
  d.seq_len_ = (int64_t)hs.seq_len;
  d.token_count_ = (int64_t)hs.token_count;
  d.metric_ = hs.metric;
  for (int64_t i = 0; i < d.n_; ++i) {
    GANNET_CHECK(d.ids_[i] >= 0 && d.ids_[i] < d.n_, "difficulty index ", index_to_sample, ": sample id ",
                 d.ids_[i], " at ", i, " is outside [0, ", d.n_, ")");
    GANNET_CHECK(i == 0 || d.values_[i] >= d.values_[i - 1], "difficulty index ", index_to_metric,
                 ": values are not sorted at entry ", i);
  }
  d.ids_map_ = ms;
  d.values_map_ = mm;
  return d;
}

int64_t DifficultyIndex::admitted_by_value(double max_value) const {
  return std::upper_bound(values_, values_ + n_, max_value) - values_;
}

int64_t DifficultyIndex::admitted_by_percentile(double percentile) const {
  double k = std::ceil(percentile * (double)n_ / 100.0 - 1e-9);
  return std::clamp<int64_t>((int64_t)k, 0, n_);
}

std::vector<double> read_percentiles(const std::string& path) {
  Header h;
  std::shared_ptr<MappedFile> m = open_index_file(path, kPercentiles, h);
  const double* p = reinterpret_cast<const double*>(m->data() + sizeof(Header));
  return std::vector<double>(p, p + 101);
}

}  // namespace gannet::data
