// Offline difficulty analysis (`gannet data analyze`): a difficulty value per training sample,
// written as memory-mapped index files that the curriculum sampler reads.
//
// A sample is the fixed window i of a token file cut at seq_len T: inputs are tokens
// [i*T, i*T + T), targets the T tokens after them; i < (tokens - 1) / T. These are the windows
// `eval_windows` reads and the curriculum sampler draws from. Metrics look at the T input tokens.
//
// Built-in metrics (a registry: add more with register_difficulty_metric):
//   seqlen                   tokens up to and including the first end-of-document token (T if
//                            the window holds none): the length of the window's first document.
//   vocabularyrarity         sum over the T tokens of -log p(token), p the unigram distribution
//                            of the whole token file.
//   seqlen_vocabularyrarity  the same sum over the seqlen tokens only (the two combined: short and
//                            common is easy, long and rare is hard).
//
// Index files (little-endian), three per metric, named <metric>_index_to_sample.bin,
// <metric>_index_to_metric.bin and <metric>_percentiles.bin, each a 96-byte header
//   char    magic[8]      "GNDIDX01"
//   uint32  version       1
//   uint32  kind          1 index_to_sample (int64 sample ids, sorted by metric ascending, ties
//                         by id), 2 index_to_metric (float64 metric values in that order),
//                         3 percentiles (101 float64: entry p is the largest value admitted at
//                         percentile p, i.e. of sorted entry ceil(p*N/100)-1, entry 0 the smallest)
//   uint64  count         entries that follow
//   uint64  num_samples   N
//   uint64  seq_len       T
//   uint64  token_count   tokens of the analyzed file (a sampler checks it against its file)
//   char    metric[48]    metric name, NUL-padded
// followed by the entries. Percentile difficulty d admits the first ceil(d*N/100) sorted samples;
// value difficulty v admits the samples whose metric is <= v. analysis.json lists the files.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gannet/data/token_file.h"

namespace gannet::data {

// What a metric function sees of one sample.
struct SampleView {
  const int32_t* tokens;                 // the T input tokens
  int64_t length;                        // T
  int64_t index;                         // sample id
  int32_t eos_id;                        // end-of-document token
  const std::vector<double>* neg_log_p;  // -log p(v) under the file's unigram distribution
};
using DifficultyMetric = std::function<double(const SampleView&)>;

// Adds a metric under `name` (letters, digits and '_', at most 47 characters); replaces one of the
// same name. Thread-safe against other registrations, not against a running analysis.
void register_difficulty_metric(const std::string& name, DifficultyMetric fn);
std::vector<std::string> difficulty_metric_names();

// Number of samples of a file at seq_len T.
int64_t difficulty_sample_count(const TokenFile& file, int64_t seq_len);
// -log(count(v) / total) for every v up to the largest token in the file (+inf for tokens that
// never occur); the header's vocabulary size does not size it.
std::vector<double> unigram_neg_log_p(const TokenFile& file);
// The metric's value for every sample, computed in parallel (OpenMP).
std::vector<double> compute_difficulty(const TokenFile& file, int64_t seq_len, const std::string& metric,
                                       int32_t eos_id = 2);

struct AnalyzeOptions {
  std::string token_file = "data/brown/train.tok";
  std::string out_dir = "data/brown/difficulty";
  int64_t seq_len = 256;
  std::vector<std::string> metrics = {"seqlen", "vocabularyrarity", "seqlen_vocabularyrarity"};
  int32_t eos_id = 2;
};

struct AnalyzeSummary {
  int64_t num_samples = 0;
  std::vector<std::string> files;
};

// Computes every metric and writes its three index files and analysis.json (each atomically).
AnalyzeSummary analyze_difficulty(const AnalyzeOptions& options);

std::string index_to_sample_path(const std::string& dir, const std::string& metric);
std::string index_to_metric_path(const std::string& dir, const std::string& metric);
std::string percentiles_path(const std::string& dir, const std::string& metric);

// One metric's index, memory-mapped: the sorted sample ids and their values.
class DifficultyIndex {
 public:
  // Opens and cross-checks the two files (same metric, sample count, seq_len and token count).
  static DifficultyIndex open(const std::string& index_to_sample, const std::string& index_to_metric);
  const std::string& metric() const { return metric_; }
  int64_t num_samples() const { return n_; }
  int64_t seq_len() const { return seq_len_; }
  int64_t token_count() const { return token_count_; }
  const int64_t* sample_ids() const { return ids_; }   // [N], ascending metric
  const double* metric_values() const { return values_; }  // [N], ascending
  // How many sorted samples a difficulty admits.
  int64_t admitted_by_value(double max_value) const;
  int64_t admitted_by_percentile(double percentile) const;

 private:
  std::shared_ptr<const void> ids_map_, values_map_;
  const int64_t* ids_ = nullptr;
  const double* values_ = nullptr;
  std::string metric_;
  int64_t n_ = 0, seq_len_ = 0, token_count_ = 0;
};

// The 101 percentile values of a percentiles file.
std::vector<double> read_percentiles(const std::string& path);

}  // namespace gannet::data
