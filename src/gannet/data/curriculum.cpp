#include "gannet/data/curriculum.h"

#include <algorithm>

#include "gannet/core/error.h"

namespace gannet::data {

CurriculumSampler::CurriculumSampler(const TokenFile& file, int64_t seq_len, const CurriculumConfig& config,
                                     uint64_t seed)
    : file_(&file), T_(seq_len), config_(config), rng_(seed) {
  GANNET_CHECK(seq_len > 0 && file.size() > seq_len, "curriculum: token file ", file.path(), " holds ", file.size(),
               " tokens, fewer than one window of ", seq_len + 1);
  GANNET_CHECK(!config.metrics.empty(), "curriculum: no curriculum_metrics");
  for (size_t m = 0; m < config_.metrics.size(); ++m) {
    const CurriculumMetric& cm = config_.metrics[m];
    if (cm.kind != CurriculumMetricKind::index) {
      GANNET_CHECK(seqlen_metric_ < 0, "curriculum_metrics: ", config_.metrics[(size_t)std::max(0, seqlen_metric_)].name,
                   " and ", cm.name, " both set the sequence length; use one");
      GANNET_CHECK(cm.pacing.max_value <= seq_len && cm.pacing.min_value >= 1, "curriculum_metrics.", cm.name,
                   ": difficulties must lie in [1, data.seq_len = ", seq_len, "]");
      seqlen_metric_ = (int)m;
      continue;
    }
    DifficultyIndex idx = DifficultyIndex::open(cm.index_to_sample_path, cm.index_to_metric_path);
    GANNET_CHECK(idx.seq_len() == seq_len && idx.token_count() == file.size(), "curriculum_metrics.", cm.name, ": ",
                 cm.index_to_sample_path, " was made for seq_len ", idx.seq_len(), " over ", idx.token_count(),
                 " tokens, but training uses seq_len ", seq_len, " over ", file.path(), " (", file.size(),
                 " tokens); run `gannet data analyze --tokens ", file.path(), " --seq-len ", seq_len, "`");
    if (cm.percentile)
      GANNET_CHECK(cm.pacing.max_value <= 100 && cm.pacing.min_value >= 0, "curriculum_metrics.", cm.name,
                   ": percentile difficulties must lie in [0, 100]");
    std::vector<int64_t> rank((size_t)idx.num_samples());
    for (int64_t i = 0; i < idx.num_samples(); ++i) rank[(size_t)idx.sample_ids()[i]] = i;
    index_metrics_.push_back((int)m);
    indexes_.push_back(std::move(idx));
    rank_.push_back(std::move(rank));
  }
}

std::vector<int64_t> CurriculumSampler::difficulties(int64_t step) const {
  std::vector<int64_t> d;
  for (const auto& m : config_.metrics) d.push_back(m.pacing.at(step));
  return d;
}

int64_t CurriculumSampler::len_at(int64_t step) const {
  return seqlen_metric_ < 0 ? T_ : config_.metrics[(size_t)seqlen_metric_].pacing.at(step);
}

int64_t CurriculumSampler::rows_at(int64_t step, int64_t B) const {
  if (seqlen_metric_ < 0 || config_.metrics[(size_t)seqlen_metric_].kind == CurriculumMetricKind::seqlen_truncate)
    return B;
  return B * (T_ / len_at(step));
}

const std::vector<int64_t>& CurriculumSampler::admitted(int64_t step) {
  std::vector<int64_t> counts;
  for (size_t k = 0; k < indexes_.size(); ++k) {
    const CurriculumMetric& cm = config_.metrics[(size_t)index_metrics_[k]];
    const int64_t d = cm.pacing.at(step);
    counts.push_back(cm.percentile ? indexes_[k].admitted_by_percentile((double)d)
                                   : indexes_[k].admitted_by_value((double)d));
  }
  if (counts == cached_counts_) return admitted_;
  admitted_.clear();
  const int64_t n = indexes_[0].num_samples();
  for (int64_t s = 0; s < n; ++s) {
    bool ok = true;
    for (size_t k = 0; k < indexes_.size() && ok; ++k) ok = rank_[k][(size_t)s] < counts[k];
    if (ok) admitted_.push_back(s);
  }
  cached_counts_ = counts;
  if (admitted_.empty()) {
    std::string what;
    for (size_t k = 0; k < indexes_.size(); ++k)
      what += str(k ? ", " : "", config_.metrics[(size_t)index_metrics_[k]].name, " <= ",
                  config_.metrics[(size_t)index_metrics_[k]].pacing.at(step),
                  config_.metrics[(size_t)index_metrics_[k]].percentile ? "%" : "");
    fail(str("curriculum: no sample is admitted at step ", step, " (", what, "); raise min_difficulty"));
  }
  return admitted_;
}

void CurriculumSampler::next(int64_t step, int64_t B, Tensor& tokens, Tensor& targets) {
  GANNET_CHECK(B > 0, "curriculum: batch size must be positive");
  const int64_t len = len_at(step), rows = rows_at(step, B), per_window = rows / B;
  tokens = Tensor::empty({rows, len}, DType::i32);
  targets = Tensor::empty({rows, len}, DType::i32);
  last_samples_.assign((size_t)B, -1);
  std::vector<int32_t> window((size_t)T_ + 1);
  for (int64_t b = 0; b < B; ++b) {
    int64_t start;
    if (indexes_.empty()) {
      start = (int64_t)rng_.below((uint64_t)(file_->size() - T_));  // as WindowSampler draws
    } else {
      const std::vector<int64_t>& ok = admitted(step);
      int64_t sample = ok[(size_t)rng_.below(ok.size())];
      last_samples_[(size_t)b] = sample;
      start = sample * T_;
    }
    file_->read(start, T_ + 1, window.data());
    for (int64_t r = 0; r < per_window; ++r) {
      const int32_t* src = window.data() + r * len;
      int32_t* tk = tokens.data<int32_t>() + (b * per_window + r) * len;
      int32_t* tg = targets.data<int32_t>() + (b * per_window + r) * len;
      std::copy(src, src + len, tk);
      std::copy(src + 1, src + 1 + len, tg);
    }
  }
}

}  // namespace gannet::data
