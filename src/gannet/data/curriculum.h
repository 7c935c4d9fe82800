// Curriculum learning (DeepSpeed's data_efficiency.data_sampling.curriculum_learning): training
// batches whose difficulty grows with the step, by pacing functions over one or more metrics.
//
// Metrics of two kinds:
// - seqlen_truncate / seqlen_reshape: the difficulty is the sequence length d. Truncation keeps the
//   first d tokens of each drawn window (B rows of d); reshaping cuts each window into floor(T/d)
//   rows of d (about the same tokens per step, shorter sequences). No index needed.
// - any metric of `gannet data analyze` (index_to_sample_path + index_to_metric_path): only the
//   samples (fixed windows of T tokens, see data/difficulty.h) whose metric is within the current
//   difficulty are drawn, by value (metric <= d) or by percentile (the easiest d percent). With
//   several, a sample must be admitted by all of them.
// Draws are uniform with replacement from the admitted samples (or, with no index metric, random
// windows exactly as the plain sampler draws them), from one RNG whose state goes into
// checkpoints; everything else is a function of the step, so a resumed run draws what an
// uninterrupted one would.
#pragma once
#include <string>
#include <vector>

#include "gannet/core/rng.h"
#include "gannet/core/tensor.h"
#include "gannet/data/difficulty.h"
#include "gannet/data/pacing.h"
#include "gannet/data/token_file.h"

namespace gannet::data {

enum class CurriculumMetricKind { seqlen_truncate, seqlen_reshape, index };

struct CurriculumMetric {
  std::string name;
  CurriculumMetricKind kind = CurriculumMetricKind::index;
  bool percentile = false;  // difficulty_type percentile (else value)
  std::string index_to_sample_path, index_to_metric_path;
  Pacing pacing;  // min/max difficulty and schedule
};

struct CurriculumConfig {
  bool enabled = false;
  std::vector<CurriculumMetric> metrics;
};

class CurriculumSampler {
 public:
  // seq_len = T, the window length (and the length the index files were made for). Opens and
  // checks every index against `file`.
  CurriculumSampler(const TokenFile& file, int64_t seq_len, const CurriculumConfig& config, uint64_t seed);

  // A batch for `step` from B windows: tokens and targets i32 [rows, len] (new tensors).
  void next(int64_t step, int64_t B, Tensor& tokens, Tensor& targets);
  // Shape of that batch (a function of the step only).
  int64_t rows_at(int64_t step, int64_t B) const;
  int64_t len_at(int64_t step) const;
  // Each metric's difficulty at `step`, in config order.
  std::vector<int64_t> difficulties(int64_t step) const;
  // Sample ids of the last batch's B windows when drawn from an index (window i starts at i*T);
  // -1 each when no index metric is configured.
  const std::vector<int64_t>& last_samples() const { return last_samples_; }
  const CurriculumConfig& config() const { return config_; }
  Rng& rng() { return rng_; }

 private:
  const std::vector<int64_t>& admitted(int64_t step);

  const TokenFile* file_;
  int64_t T_;
  CurriculumConfig config_;
  Rng rng_;
  int seqlen_metric_ = -1;  // index into config_.metrics, or -1
  std::vector<int> index_metrics_;
  std::vector<DifficultyIndex> indexes_;    // parallel to index_metrics_
  std::vector<std::vector<int64_t>> rank_;  // rank_[k][sample]: position of sample in index k's order
  std::vector<int64_t> cached_counts_;      // admitted prefix lengths the cache was built for
  std::vector<int64_t> admitted_;           // sample ids admitted by every index metric
  std::vector<int64_t> last_samples_;
};

}  // namespace gannet::data
