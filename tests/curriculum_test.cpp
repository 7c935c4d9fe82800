// The curriculum sampler: never above the current difficulty, seqlen truncation and reshaping,
// several metrics at once, determinism; the data_efficiency config's errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "gannet/core/rng.h"
#include "gannet/data/curriculum.h"
#include "gannet/data/difficulty.h"
#include "gannet/data/window_sampler.h"
#include "gannet/train/train_config.h"
#include "test_files.h"

using namespace gannet;

namespace {
class Curriculum : public gannet::testing::TempDirTest {
 protected:
  static constexpr int64_t T = 8;
  void SetUp() override {
    gannet::testing::TempDirTest::SetUp();
    Rng rng(5);
    std::vector<int32_t> t(1601);
    for (auto& x : t) x = rng.uniform() < 0.04f ? 2 : 3 + (int32_t)std::min<uint64_t>(rng.below(30), rng.below(30));
    data::write_token_file(file("train.tok"), t, 40);
    data::AnalyzeOptions o;
    o.token_file = file("train.tok");
    o.out_dir = file("idx");
    o.seq_len = T;
    data::analyze_difficulty(o);
  }
  data::CurriculumMetric index_metric(const std::string& name, bool percentile, int64_t lo, int64_t hi,
                                      int64_t total) {
    data::CurriculumMetric m;
    m.name = name;
    m.percentile = percentile;
    m.index_to_sample_path = data::index_to_sample_path(file("idx"), name);
    m.index_to_metric_path = data::index_to_metric_path(file("idx"), name);
    m.pacing.min_value = lo, m.pacing.max_value = hi, m.pacing.total_steps = total;
    return m;
  }
};
}  // namespace

TEST_F(Curriculum, NeverYieldsASampleAboveTheCurrentDifficulty) {
  data::TokenFile f = data::TokenFile::open(file("train.tok"));
  const std::vector<double> rarity = data::compute_difficulty(f, T, "vocabularyrarity");
  const std::vector<double> seqlen = data::compute_difficulty(f, T, "seqlen");
  std::vector<double> sorted_rarity = rarity;
  std::sort(sorted_rarity.begin(), sorted_rarity.end());
  data::CurriculumConfig cfg;
  cfg.enabled = true;
  cfg.metrics = {index_metric("vocabularyrarity", true, 30, 100, 50), index_metric("seqlen", false, 6, 8, 50)};
  data::CurriculumSampler s(f, T, cfg, 9);
  std::set<int64_t> seen_early;
  for (int64_t step = 0; step < 70; ++step) {
    Tensor tk, tg;
    s.next(step, 16, tk, tg);
    ASSERT_EQ(tk.shape(), Shape({16, T}));
    std::vector<int64_t> d = s.difficulties(step);
    const int64_t admitted = (d[0] * (int64_t)rarity.size() + 99) / 100;
    const double rarity_limit = sorted_rarity[(size_t)admitted - 1];
    for (int64_t b = 0; b < 16; ++b) {
      int64_t id = s.last_samples()[(size_t)b];
      ASSERT_GE(id, 0);
      EXPECT_LE(rarity[(size_t)id], rarity_limit) << "step " << step;
      EXPECT_LE(seqlen[(size_t)id], (double)d[1]) << "step " << step;
      // The batch holds exactly that window.
      for (int64_t t = 0; t < T; ++t) {
        ASSERT_EQ(tk.data<int32_t>()[b * T + t], f.at(id * T + t));
        ASSERT_EQ(tg.data<int32_t>()[b * T + t], f.at(id * T + t + 1));
      }
      if (step < 5) seen_early.insert(id);
    }
  }
  EXPECT_EQ(s.difficulties(0), (std::vector<int64_t>{30, 6}));
  EXPECT_EQ(s.difficulties(60), (std::vector<int64_t>{100, 8}));
  EXPECT_LE(seen_early.size(), (size_t)((s.difficulties(4)[0] * 200 + 99) / 100));
}

TEST_F(Curriculum, SeqlenTruncationAndReshaping) {
  data::TokenFile f = data::TokenFile::open(file("train.tok"));
  data::CurriculumConfig cfg;
  cfg.enabled = true;
  data::CurriculumMetric m;
  m.name = "seqlen_truncate";
  m.kind = data::CurriculumMetricKind::seqlen_truncate;
  m.pacing.min_value = 2, m.pacing.max_value = T, m.pacing.total_steps = 6, m.pacing.value_step = 2;
  cfg.metrics = {m};
  data::CurriculumSampler trunc(f, T, cfg, 3);
  data::WindowSampler plain(f, T, 3);
  Tensor ptk = Tensor::empty({4, T}, DType::i32), ptg = Tensor::empty({4, T}, DType::i32);
  for (int64_t step = 0; step < 8; ++step) {
    Tensor tk, tg;
    trunc.next(step, 4, tk, tg);
    plain.next(ptk, ptg);  // same draws: the truncated rows are the plain rows' beginnings
    const int64_t len = trunc.len_at(step);
    ASSERT_EQ(tk.shape(), Shape({4, len}));
    EXPECT_EQ(len, std::max<int64_t>(2, std::min<int64_t>(T, (step * 6 / 6 + 2) / 2 * 2)));
    for (int64_t b = 0; b < 4; ++b)
      for (int64_t t = 0; t < len; ++t) {
        ASSERT_EQ(tk.data<int32_t>()[b * len + t], ptk.data<int32_t>()[b * T + t]);
        ASSERT_EQ(tg.data<int32_t>()[b * len + t], ptg.data<int32_t>()[b * T + t]);
      }
  }
  cfg.metrics[0].name = "seqlen_reshape";
  cfg.metrics[0].kind = data::CurriculumMetricKind::seqlen_reshape;
  cfg.metrics[0].pacing.min_value = 3;
  data::CurriculumSampler resh(f, T, cfg, 3);
  data::WindowSampler plain2(f, T, 3);
  Tensor tk, tg;
  resh.next(0, 4, tk, tg);  // d = 3: each window of 8 gives 2 rows of 3
  plain2.next(ptk, ptg);
  ASSERT_EQ(tk.shape(), Shape({8, 3}));
  EXPECT_EQ(resh.rows_at(0, 4), 8);
  for (int64_t b = 0; b < 4; ++b)
    for (int64_t r = 0; r < 2; ++r)
      for (int64_t t = 0; t < 3; ++t) {
        ASSERT_EQ(tk.data<int32_t>()[(b * 2 + r) * 3 + t], ptk.data<int32_t>()[b * T + r * 3 + t]);
        ASSERT_EQ(tg.data<int32_t>()[(b * 2 + r) * 3 + t], ptg.data<int32_t>()[b * T + r * 3 + t]);
      }
}

TEST_F(Curriculum, DeterministicAndResumableFromTheRngState) {
  data::TokenFile f = data::TokenFile::open(file("train.tok"));
  data::CurriculumConfig cfg;
  cfg.enabled = true;
  cfg.metrics = {index_metric("seqlen_vocabularyrarity", true, 10, 100, 20)};
  data::CurriculumSampler a(f, T, cfg, 4), b(f, T, cfg, 4);
  Tensor tk, tg, tk2, tg2;
  for (int64_t s = 0; s < 10; ++s) a.next(s, 4, tk, tg);
  b.rng().set_state(a.rng().state());  // a fresh sampler with the saved state continues alike
  for (int64_t s = 10; s < 25; ++s) {
    a.next(s, 4, tk, tg);
    b.next(s, 4, tk2, tg2);
    ASSERT_EQ(a.last_samples(), b.last_samples()) << s;
  }
}

TEST_F(Curriculum, IndexMustMatchTheTrainingData) {
  data::TokenFile f = data::TokenFile::open(file("train.tok"));
  data::CurriculumConfig cfg;
  cfg.enabled = true;
  cfg.metrics = {index_metric("seqlen", false, 1, 8, 10)};
  EXPECT_TRUE(gannet::testing::has(gannet::testing::message_of([&] { data::CurriculumSampler(f, 16, cfg, 1); }),
                           "was made for seq_len 8"));
}

namespace {
std::string cfg_with(const std::string& de) {
  return R"({"model": {"vocab_size": 40, "n_ctx": 16, "n_layer": 4, "n_head": 2, "n_embd": 16},
             "data": {"seq_len": 16}, "data_efficiency": )" + de + "}";
}
std::string error_of(const std::string& de) {
  return gannet::testing::message_of([&] { train::parse_train_config(cfg_with(de), "c.json"); });
}
}  // namespace

TEST(DataEfficiencyConfig, ReadsDeepSpeedKeys) {
  train::TrainConfig c = train::parse_train_config(cfg_with(R"({"enabled": true, "seed": 7,
    "data_sampling": {"enabled": true, "curriculum_learning": {"enabled": true, "curriculum_metrics": {
      "seqlen_truncate": {"difficulty_type": "value", "clustering_type": "single_cluster", "min_difficulty": 4,
        "max_difficulty": 16, "schedule_type": "fixed_root",
        "schedule_config": {"total_curriculum_step": 100, "difficulty_step": 4, "root_degree": 2}}}}},
    "data_routing": {"enabled": true, "random_ltd": {"enabled": true, "total_layer_num": 4,
      "random_ltd_layer_num": 2, "random_ltd_layer_id": [1, 2], "model_type": "decoder",
      "random_ltd_schedule": {"min_value": 4, "max_value": 16, "schedule_type": "fixed_linear",
        "schedule_config": {"require_steps": 50, "seq_per_step": 2}},
      "layer_token_lr_schedule": {"enabled": true, "total_layer_tokens": 1e6, "warmup_type": "linear",
        "warmup_layer_tokens": 1e4}}}})"),
                                                   "c.json");
  const auto& de = c.data_efficiency;
  EXPECT_EQ(de.seed, 7u);
  ASSERT_TRUE(de.curriculum.enabled);
  ASSERT_EQ(de.curriculum.metrics.size(), 1u);
  EXPECT_EQ(de.curriculum.metrics[0].kind, data::CurriculumMetricKind::seqlen_truncate);
  EXPECT_EQ(de.curriculum.metrics[0].pacing.at(25), 8);  // sqrt(0.25) * 12 + 4 = 10 -> 8
  EXPECT_TRUE(de.random_ltd.enabled);
  EXPECT_EQ(de.random_ltd.layers, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(de.random_ltd.schedule.at(25), 10);  // 0.5 * 12 + 4
  EXPECT_TRUE(de.layer_token_lr.enabled);
  EXPECT_EQ(de.layer_token_lr.total_layer_tokens, 1e6);
  // The parent switch turns everything below it off (DeepSpeed's rule), but still checks it.
  train::TrainConfig off = train::parse_train_config(
      cfg_with(R"({"enabled": false, "data_routing": {"enabled": true, "random_ltd": {"enabled": true,
        "random_ltd_layer_id": [1], "random_ltd_schedule": {"min_value": 4, "schedule_config": {"require_steps": 5}}}}})"),
      "c.json");
  EXPECT_FALSE(off.data_efficiency.random_ltd.enabled);
}

TEST(DataEfficiencyConfig, BadKeysAndValuesAreOneLineErrorsNamingTheKey) {
  auto one_line = [](const std::string& m) { return m.find('\n') == std::string::npos; };
  std::string e = error_of(R"({"enabled": true, "data_routing": {"random_ltd": {"random_ltd_layer": [1]}}})");
  EXPECT_TRUE(gannet::testing::has(e, "unknown key 'random_ltd_layer' in c.json.data_efficiency.data_routing.random_ltd")) << e;
  EXPECT_TRUE(one_line(e));
  e = error_of(R"({"data_sampling": {"curriculum_learning": {"curriculum_metrics": {"seqlen_truncate":
      {"min_difficulty": 4, "max_difficulty": 16, "schedule_type": "fixed_cosine",
       "schedule_config": {"total_curriculum_step": 10}}}}}})");
  EXPECT_TRUE(gannet::testing::has(e, "curriculum_metrics.seqlen_truncate.schedule_type: 'fixed_cosine' is not supported")) << e;
  e = error_of(R"({"data_sampling": {"curriculum_learning": {"curriculum_metrics": {"seqlen_truncate":
      {"min_difficulty": 4, "max_difficulty": 32, "schedule_config": {"total_curriculum_step": 10}}}}}})");
  EXPECT_TRUE(gannet::testing::has(e, "seqlen_truncate: difficulties are sequence lengths in [1, data.seq_len = 16]")) << e;
  e = error_of(R"({"data_sampling": {"curriculum_learning": {"curriculum_metrics": {"vocabularyrarity":
      {"min_difficulty": 1, "max_difficulty": 100, "schedule_config": {"total_curriculum_step": 10}}}}}})");
  EXPECT_TRUE(gannet::testing::has(e, "index_to_sample_path and index_to_metric_path are required")) << e;
  e = error_of(R"({"data_sampling": {"curriculum_learning": {"curriculum_metrics": {"seqlen_truncate":
      {"difficulty_type": "percentile", "min_difficulty": 1, "max_difficulty": 16,
       "schedule_config": {"total_curriculum_step": 10}}}}}})");
  EXPECT_TRUE(gannet::testing::has(e, "seqlen_truncate takes a value")) << e;
  e = error_of(R"({"data_sampling": {"curriculum_learning": {"curriculum_metrics": {"seqlen_truncate":
      {"min_difficulty": 1, "max_difficulty": 16, "schedule_config": {"total_curriculum_step": 10, "difficulty": 3}}}}}})");
  EXPECT_TRUE(gannet::testing::has(e, "unknown key 'difficulty' in c.json.data_efficiency.data_sampling.curriculum_learning."
                              "curriculum_metrics.seqlen_truncate.schedule_config")) << e;
  e = error_of(R"({"data_routing": {"random_ltd": {"random_ltd_layer_id": [1, 4]}}})");
  EXPECT_TRUE(gannet::testing::has(e, "random_ltd_layer_id[1]: layer 4 is outside [0, n_layer = 4)")) << e;
  e = error_of(R"({"data_routing": {"random_ltd": {"total_layer_num": 12}}})");
  EXPECT_TRUE(gannet::testing::has(e, "total_layer_num 12 does not match model.n_layer 4")) << e;
  e = error_of(R"({"data_routing": {"random_ltd": {"random_ltd_schedule": {"schedule_type": "fixed_discrete"}}}})");
  EXPECT_TRUE(gannet::testing::has(e, "fixed_discrete is not supported for random-LTD")) << e;
  e = error_of(R"({"data_routing": {"random_ltd": {"random_ltd_schedule": {"max_value": 17}}}})");
  EXPECT_TRUE(gannet::testing::has(e, "kept tokens must lie in [1, data.seq_len = 16]")) << e;
  e = error_of(R"({"data_routing": {"random_ltd": {"layer_token_lr_schedule": {"warmup_type": "cosine"}}}})");
  EXPECT_TRUE(gannet::testing::has(e, "layer_token_lr_schedule.warmup_type: 'cosine' is not supported")) << e;
  e = error_of(R"({"data_sampling": {"num_workers": 2}})");
  EXPECT_TRUE(gannet::testing::has(e, "unknown key 'num_workers' in c.json.data_efficiency.data_sampling")) << e;
}
