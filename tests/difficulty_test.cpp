// The difficulty analyzer against a direct computation on a small token file, its index files,
// the metric registry, and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "gannet/core/atomic_file.h"
#include "gannet/core/rng.h"
#include "gannet/data/difficulty.h"
#include "gannet/data/token_file.h"
#include "test_files.h"

using namespace gannet;

namespace {
class Difficulty : public gannet::testing::TempDirTest {
 protected:
  // 997 tokens over a vocabulary of 20 with a skewed distribution; eos (2) every so often.
  std::vector<int32_t> make_tokens() {
    Rng rng(11);
    std::vector<int32_t> t(997);
    for (auto& x : t) {
      float u = rng.uniform();
      x = u < 0.05f ? 2 : u < 0.5f ? 3 + (int32_t)rng.below(3) : 6 + (int32_t)rng.below(14);
    }
    return t;
  }
};

// Direct: counts, -log p, windows of T at stride T, the three metric definitions.
std::vector<double> direct(const std::vector<int32_t>& t, int64_t T, const std::string& metric) {
  std::map<int32_t, double> count;
  for (int32_t x : t) count[x] += 1;
  const int64_t n = ((int64_t)t.size() - 1) / T;
  std::vector<double> out;
  for (int64_t i = 0; i < n; ++i) {
    int64_t len = T;
    for (int64_t j = 0; j < T; ++j)
      if (t[(size_t)(i * T + j)] == 2) {
        len = j + 1;
        break;
      }
    double rare_all = 0, rare_lead = 0;
    for (int64_t j = 0; j < T; ++j) {
      double nl = -std::log(count[t[(size_t)(i * T + j)]] / (double)t.size());
      rare_all += nl;
      if (j < len) rare_lead += nl;
    }
    out.push_back(metric == "seqlen" ? (double)len : metric == "vocabularyrarity" ? rare_all : rare_lead);
  }
  return out;
}
}  // namespace

TEST_F(Difficulty, AnalyzerEqualsDirectComputation) {
  std::vector<int32_t> toks = make_tokens();
  data::write_token_file(file("train.tok"), toks, 20);
  data::AnalyzeOptions o;
  o.token_file = file("train.tok");
  o.out_dir = file("idx");
  o.seq_len = 16;
  data::AnalyzeSummary s = data::analyze_difficulty(o);
  const int64_t n = (997 - 1) / 16;
  EXPECT_EQ(s.num_samples, n);
  for (const std::string& metric : o.metrics) {
    std::vector<double> want = direct(toks, 16, metric);
    data::TokenFile f = data::TokenFile::open(file("train.tok"));
    std::vector<double> got = data::compute_difficulty(f, 16, metric);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-9 * (1 + want[i])) << metric << " " << i;

    data::DifficultyIndex idx = data::DifficultyIndex::open(data::index_to_sample_path(o.out_dir, metric),
                                                            data::index_to_metric_path(o.out_dir, metric));
    EXPECT_EQ(idx.metric(), metric);
    EXPECT_EQ(idx.num_samples(), n);
    EXPECT_EQ(idx.seq_len(), 16);
    EXPECT_EQ(idx.token_count(), 997);
    std::vector<int64_t> order(n);
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return want[a] < want[b]; });
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(idx.sample_ids()[i], order[i]) << metric << " " << i;
      EXPECT_NEAR(idx.metric_values()[i], want[order[i]], 1e-9 * (1 + want[order[i]]));
    }
    std::vector<double> pct = data::read_percentiles(data::percentiles_path(o.out_dir, metric));
    ASSERT_EQ(pct.size(), 101u);
    EXPECT_EQ(pct[0], idx.metric_values()[0]);
    EXPECT_EQ(pct[100], idx.metric_values()[n - 1]);
    // 62 samples: percentile 50 admits ceil(31) = 31 samples, percentile 1 admits 1.
    EXPECT_EQ(idx.admitted_by_percentile(50), 31);
    EXPECT_EQ(idx.admitted_by_percentile(1), 1);
    EXPECT_EQ(idx.admitted_by_percentile(100), n);
    EXPECT_EQ(pct[50], idx.metric_values()[30]);
    // Value difficulty admits exactly the samples at or below it.
    double v = want[order[n / 3]];
    int64_t expect = std::count_if(want.begin(), want.end(), [&](double x) { return x <= v; });
    EXPECT_EQ(idx.admitted_by_value(v), expect);
  }
  EXPECT_TRUE(std::filesystem::exists(file("idx/analysis.json")));
  for (const auto& e : std::filesystem::directory_iterator(file("idx")))
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
}

TEST_F(Difficulty, MetricsDefinedInCpp) {
  data::register_difficulty_metric("count_of_token_7", [](const data::SampleView& s) {
    return (double)std::count(s.tokens, s.tokens + s.length, 7);
  });
  std::vector<int32_t> toks = make_tokens();
  data::write_token_file(file("t.tok"), toks, 20);
  data::TokenFile f = data::TokenFile::open(file("t.tok"));
  std::vector<double> got = data::compute_difficulty(f, 10, "count_of_token_7");
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(got[i], (double)std::count(toks.begin() + i * 10, toks.begin() + i * 10 + 10, 7));
  auto names = data::difficulty_metric_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "count_of_token_7"), names.end());
}

TEST_F(Difficulty, BadInputIsAOneLineError) {
  std::vector<int32_t> toks = make_tokens();
  data::write_token_file(file("t.tok"), toks, 20);
  data::AnalyzeOptions o;
  o.token_file = file("t.tok");
  o.out_dir = file("idx");
  o.seq_len = 16;
  o.metrics = {"rarity"};
  EXPECT_TRUE(gannet::testing::has(gannet::testing::message_of([&] { data::analyze_difficulty(o); }),
                           "unknown difficulty metric 'rarity'"));
  o.metrics = {"seqlen"};
  o.seq_len = 5000;
  EXPECT_TRUE(gannet::testing::has(gannet::testing::message_of([&] { data::analyze_difficulty(o); }), "fewer than one sample"));
  o.seq_len = 16;
  data::analyze_difficulty(o);
  // Mismatched pair and a truncated file.
  o.metrics = {"vocabularyrarity"};
  data::analyze_difficulty(o);
  EXPECT_TRUE(gannet::testing::has(
      gannet::testing::message_of([&] {
        data::DifficultyIndex::open(data::index_to_sample_path(o.out_dir, "seqlen"),
                                    data::index_to_metric_path(o.out_dir, "vocabularyrarity"));
      }),
      "do not belong together"));
  std::string bytes = read_file(data::index_to_sample_path(o.out_dir, "seqlen"));
  gannet::testing::write(file("cut.bin"), bytes.substr(0, bytes.size() - 3));
  EXPECT_TRUE(gannet::testing::has(gannet::testing::message_of([&] {
                             data::DifficultyIndex::open(file("cut.bin"),
                                                         data::index_to_metric_path(o.out_dir, "seqlen"));
                           }),
                           "size mismatch"));
  EXPECT_TRUE(gannet::testing::has(gannet::testing::message_of([&] {
                             data::DifficultyIndex::open(data::index_to_metric_path(o.out_dir, "seqlen"),
                                                         data::index_to_metric_path(o.out_dir, "seqlen"));
                           }),
                           "expected index_to_sample"));
}
