// The MoE routing analysis (train/moe_stats.h): accumulated loads, drops and top tokens against a
// direct count from the layers' routings; the report, the SVG chart; `gannet moe-stats` end to end
// and its one-line errors.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "gannet/autograd/tape.h"
#include "gannet/core/atomic_file.h"
#include "gannet/core/rng.h"
#include "gannet/data/token_file.h"
#include "gannet/data/tokenizer.h"
#include "gannet/data/window_sampler.h"
#include "gannet/io/checkpoint.h"
#include "gannet/train/moe_chart.h"
#include "gannet/train/moe_report.h"
#include "gannet/train/moe_stats.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
namespace fs = std::filesystem;

namespace {
// Four blocks, MoE in blocks 1 and 3 with 4 and 6 experts (a pyramid), top-2, a tight capacity.
models::GptConfig moe_config(int64_t vocab = 50) {
  models::GptConfig c;
  c.vocab_size = vocab;
  c.n_ctx = 16;
  c.n_layer = 4;
  c.n_head = 2;
  c.n_embd = 16;
  c.moe.num_experts = {4, 6};
  c.moe.k = 2;
  c.moe.eval_capacity_factor = 0.75;
  c.moe.min_capacity = 1;
  return c;
}

std::vector<int32_t> random_tokens(int64_t n, int32_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t((size_t)n);
  // Skewed, so that some tokens are frequent and the top lists are not all ties.
  for (auto& x : t) x = (int32_t)std::min<uint64_t>(rng.below((uint64_t)vocab), rng.below((uint64_t)vocab));
  return t;
}

// What the analysis should find, counted directly from each pass's routings by another route
// (each slot's expert by slot_expert, each token's slots through the token index).
struct Direct {
  std::vector<std::vector<int64_t>> demand, kept;
  std::vector<std::vector<std::map<int32_t, int64_t>>> counts;
  std::vector<int64_t> tokens, dropped;
};

Direct count_directly(const models::Gpt& model, const data::TokenFile& file, int64_t T, int64_t batch, uint64_t seed) {
  autograd::NoGrad no_grad;
  const int64_t windows = data::eval_window_count(file, T);
  Direct d;
  for (int64_t first = 0, i = 0; first < windows; first += batch, ++i) {
    const int64_t rows = std::min(batch, windows - first);
    std::vector<int32_t> flat((size_t)(rows * T));
    for (int64_t b = 0; b < rows; ++b) file.read((first + b) * T, T, flat.data() + b * T);
    Tensor tokens = Tensor::empty({rows, T}, DType::i32);
    std::copy(flat.begin(), flat.end(), tokens.data<int32_t>());
    nn::MoePass pass;
    pass.keep_routing = true;
    pass.seed = seed + (uint64_t)i;
    model.hidden(tokens, &pass);
    if (d.demand.empty()) {
      const size_t L = pass.routings.size();
      d.demand.resize(L), d.kept.resize(L), d.counts.resize(L), d.tokens.assign(L, 0), d.dropped.assign(L, 0);
    }
    for (size_t l = 0; l < pass.routings.size(); ++l) {
      const kernels::MoeRouting& r = *pass.routings[l];
      d.demand[l].resize((size_t)r.experts), d.kept[l].resize((size_t)r.experts), d.counts[l].resize((size_t)r.experts);
      for (int64_t e = 0; e < r.experts; ++e) d.demand[l][(size_t)e] += r.demand[(size_t)e];
      for (int64_t n = 0; n < r.tokens; ++n)
        for (int32_t j = r.token_offsets[(size_t)n]; j < r.token_offsets[(size_t)n + 1]; ++j) {
          const int32_t e = r.slot_expert(r.token_slots[(size_t)j]);
          ++d.kept[l][(size_t)e];
          ++d.counts[l][(size_t)e][flat[(size_t)n]];
        }
      d.tokens[l] += r.tokens;
      d.dropped[l] += r.dropped;
    }
  }
  return d;
}

models::Gpt random_model(const models::GptConfig& c, uint64_t seed) {
  models::Gpt m(c);
  m.init(seed);
  return m;
}

size_t count(const std::string& s, const std::string& part) {
  size_t n = 0;
  for (size_t p = s.find(part); p != std::string::npos; p = s.find(part, p + 1)) ++n;
  return n;
}

struct CliRun {
  int rc;
  std::string out, err;
};
}  // namespace

class MoeStatsTest : public TempDirTest {
 protected:
  CliRun run_gannet(const std::string& args) {
    const std::string out = file("stdout.txt"), err = file("stderr.txt");
    std::string cmd = std::string(GANNET_BINARY) + " " + args + " >" + out + " 2>" + err;
    int rc = std::system(cmd.c_str());
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_file(out), read_file(err)};
  }
};

TEST_F(MoeStatsTest, LoadsDropsAndTopTokensMatchTheRoutings) {
  const models::GptConfig c = moe_config();
  const models::Gpt model = random_model(c, 7);
  data::write_token_file(file("val.tok"), random_tokens(8 * 11 + 1, 50, 3), 50);
  data::TokenFile f = data::TokenFile::open(file("val.tok"));
  train::MoeStatsOptions o;
  o.seq_len = 8;
  o.batch = 3;  // 11 windows: passes of 3, 3, 3 and 2
  o.top = 5;
  o.seed = 11;
  const train::MoeStats s = train::analyze_moe(model, f, o);
  EXPECT_EQ(s.windows, 11);
  EXPECT_EQ(s.seq_len, 8);
  const Direct d = count_directly(model, f, 8, 3, 11);

  ASSERT_EQ(s.layers.size(), 2u);
  ASSERT_EQ(d.demand.size(), 2u);
  EXPECT_EQ(s.layers[0].block, 1);
  EXPECT_EQ(s.layers[1].block, 3);
  int64_t any_dropped = 0;
  for (size_t l = 0; l < 2; ++l) {
    const train::MoeLayerReport& r = s.layers[l];
    SCOPED_TRACE("layer " + std::to_string(l));
    EXPECT_EQ(r.experts, l == 0 ? 4 : 6);
    EXPECT_EQ(r.tokens, 88);
    EXPECT_EQ(r.tokens, d.tokens[l]);
    EXPECT_EQ(r.passes, 4);
    EXPECT_EQ(r.choices, 88 * 2);
    EXPECT_EQ(r.dropped, d.dropped[l]);
    // 24 tokens per full pass: ceil(2 * 24 / E * 0.75).
    EXPECT_EQ(r.capacity, (int64_t)std::ceil(2.0 * 24 / (double)r.experts * 0.75));
    int64_t demand = 0, kept = 0;
    for (int64_t e = 0; e < r.experts; ++e) {
      const train::ExpertStats& x = r.expert[(size_t)e];
      EXPECT_EQ(x.demand, d.demand[l][(size_t)e]) << "expert " << e;
      EXPECT_EQ(x.kept, d.kept[l][(size_t)e]) << "expert " << e;
      EXPECT_LE(x.kept, r.capacity * r.passes);
      demand += x.demand, kept += x.kept;
      // Top tokens: the most frequent by the direct count, ties to the lower id.
      std::vector<std::pair<int32_t, int64_t>> want(d.counts[l][(size_t)e].begin(), d.counts[l][(size_t)e].end());
      std::stable_sort(want.begin(), want.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
      want.resize(std::min<size_t>(want.size(), 5));
      EXPECT_EQ(x.top_tokens, want) << "expert " << e;
    }
    EXPECT_EQ(demand, r.tokens * 2);
    EXPECT_EQ(kept, r.tokens * 2 - r.dropped);  // every choice has a slot unless dropped
    EXPECT_EQ(kept, r.total_kept());
    double shares = 0;
    for (int64_t e = 0; e < r.experts; ++e) shares += r.demand_share(e);
    EXPECT_NEAR(shares, 1.0, 1e-12);
    EXPECT_GT(r.entropy, 0);
    EXPECT_LE(r.entropy, std::log((double)r.experts) + 1e-9);
    EXPECT_NEAR(r.entropy_fraction(), r.entropy / std::log((double)r.experts), 1e-12);
    EXPECT_GT(r.balance_loss, 0);
    any_dropped += r.dropped;
  }
  EXPECT_GT(any_dropped, 0) << "the capacity factor 0.75 should drop some choices";

  // --windows: only the first windows count.
  o.max_windows = 4;
  const train::MoeStats part = train::analyze_moe(model, f, o);
  EXPECT_EQ(part.windows, 4);
  EXPECT_EQ(part.layers[0].tokens, 32);
  EXPECT_EQ(part.layers[0].passes, 2);
}

TEST_F(MoeStatsTest, DroplessAndExpertChoiceRouting) {
  data::write_token_file(file("val.tok"), random_tokens(8 * 6 + 1, 50, 5), 50);
  data::TokenFile f = data::TokenFile::open(file("val.tok"));
  train::MoeStatsOptions o;
  o.seq_len = 8;
  o.batch = 4;

  models::GptConfig c = moe_config();
  c.moe.drop_tokens = false;
  train::MoeStats s = train::analyze_moe(random_model(c, 2), f, o);
  for (const auto& r : s.layers) {
    EXPECT_EQ(r.capacity, -1);
    EXPECT_EQ(r.dropped, 0);
    EXPECT_EQ(r.total_kept(), r.tokens * 2);
    EXPECT_EQ(r.capacity_use(0), 0.0);
  }

  c = moe_config();
  c.moe.router = "expert_choice";
  c.moe.k = 1;
  s = train::analyze_moe(random_model(c, 2), f, o);
  for (const auto& r : s.layers) {
    EXPECT_TRUE(r.expert_choice);
    EXPECT_EQ(r.choices, r.tokens);
    // Each expert takes `capacity` tokens per pass: passes of 32 and 16 tokens.
    const int64_t cap32 = (int64_t)std::ceil(32.0 / (double)r.experts * 0.75),
                  cap16 = (int64_t)std::ceil(16.0 / (double)r.experts * 0.75);
    EXPECT_EQ(r.capacity, cap32);
    EXPECT_EQ(r.total_kept(), r.experts * (cap32 + cap16));
    EXPECT_EQ(r.capacity_slots, r.experts * (cap32 + cap16));
    EXPECT_NEAR(r.capacity_use(0), 1.0, 1e-12);
  }
}

TEST_F(MoeStatsTest, ReportAndChart) {
  const models::GptConfig c = moe_config();
  data::write_token_file(file("val.tok"), random_tokens(8 * 5 + 1, 50, 9), 50);
  data::TokenFile f = data::TokenFile::open(file("val.tok"));
  train::MoeStatsOptions o;
  o.seq_len = 8;
  o.top = 3;
  const train::MoeStats s = train::analyze_moe(random_model(c, 4), f, o);
  // Token names that need escaping in SVG.
  train::TokenName name = [](int32_t id) { return "<t&" + std::to_string(id) + ">"; };

  const std::string table = train::format_moe_table(s, name);
  EXPECT_TRUE(has(table, "block 1: 4 experts, top-2 routing; 40 tokens in 1 pass;")) << table;
  EXPECT_TRUE(has(table, "block 3: 6 experts")) << table;
  EXPECT_TRUE(has(table, "of log 6")) << table;
  for (const auto& r : s.layers)
    for (const auto& x : r.expert)
      if (!x.top_tokens.empty()) {
        EXPECT_TRUE(has(table, name(x.top_tokens[0].first) + " (" + std::to_string(x.top_tokens[0].second) + ")"))
            << table;
      }
  EXPECT_EQ(count(table, "\n       5  "), 1u) << table;  // expert 5 exists only in block 3

  const nlohmann::json j = train::moe_stats_json(s, name);
  ASSERT_EQ(j["layers"].size(), 2u);
  EXPECT_EQ(j["layers"][1]["expert_stats"].size(), 6u);
  EXPECT_EQ(j["layers"][0]["tokens"], 40);
  EXPECT_EQ(j["layers"][0]["expert_stats"][0]["demand"], s.layers[0].expert[0].demand);
  EXPECT_LE(j["layers"][0]["expert_stats"][0]["top_tokens"].size(), 3u);

  train::MoeChartOptions co;
  co.title = "m<1>.safetensors";
  co.token_name = name;
  train::write_moe_chart(s, file("chart.svg"), co);
  const std::string svg = read_file(file("chart.svg"));
  EXPECT_EQ(svg.rfind("<svg ", 0), 0u);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  EXPECT_EQ(count(svg, "class=\"cell\""), 4u + 6u);  // one cell per expert per layer
  EXPECT_EQ(count(svg, "<text"), count(svg, "</text>"));
  EXPECT_EQ(count(svg, "<title>"), count(svg, "</title>"));
  EXPECT_EQ(count(svg, "class=\"cell\""), count(svg, "</rect>"));  // each cell holds its tooltip
  EXPECT_EQ(count(svg, "class=\"use\""), 4u + 6u);  // and a bar for its capacity use
  EXPECT_TRUE(has(svg, "Expert load per MoE layer: m&lt;1&gt;.safetensors"));
  EXPECT_TRUE(has(svg, "&lt;t&amp;"));
  EXPECT_FALSE(has(svg, "<t&"));
  EXPECT_TRUE(has(svg, ">block 1<") && has(svg, ">block 3<"));
  EXPECT_TRUE(has(svg, "6 experts, top-2"));

  // Many experts: still one cell each, and the chart stays a readable width.
  train::MoeStats wide = s;
  wide.layers[1].experts = 64;
  wide.layers[1].expert.resize(64);
  const std::string w = train::moe_chart_svg(wide, co);
  EXPECT_EQ(count(w, "class=\"cell\""), 4u + 64u);

  EXPECT_TRUE(has(message_of([&] { train::moe_chart_svg(train::MoeStats{}); }), "no MoE layer"));
}

TEST_F(MoeStatsTest, DenseModelIsAnError) {
  models::GptConfig dense = moe_config();
  dense.moe = nn::MoeConfig{};
  data::write_token_file(file("val.tok"), random_tokens(40, 50, 1), 50);
  data::TokenFile f = data::TokenFile::open(file("val.tok"));
  EXPECT_TRUE(has(message_of([&] { train::analyze_moe(random_model(dense, 1), f, {}); }), "no MoE layer"));
  // A token file whose vocabulary the model cannot embed.
  data::write_token_file(file("big.tok"), random_tokens(40, 50, 1), 60);
  data::TokenFile big = data::TokenFile::open(file("big.tok"));
  EXPECT_TRUE(has(message_of([&] { train::analyze_moe(random_model(moe_config(), 1), big, {}); }), "vocabulary 60"));
}

// The command end to end on a data directory with a real tokenizer.
TEST_F(MoeStatsTest, CommandLine) {
  // A tiny SentencePiece tokenizer, and val.tok in its vocabulary.
  std::string text;
  Rng rng(5);
  const char* syll[] = {"ba", "ker", "lo", "mi", "tan", "re", "so", "vel", "qua", "stra", "en", "dor"};
  for (int line = 0; line < 300; ++line) {
    for (int w = 0, n = 3 + (int)rng.below(8); w < n; ++w) {
      if (w) text += ' ';
      for (int s = 0, m = 1 + (int)rng.below(3); s < m; ++s) text += syll[rng.below(12)];
    }
    text += ".\n";
  }
  fs::create_directories(dir_ / "data");
  write(file("text.txt"), text);
  data::Tokenizer::train_bpe(file("text.txt"), file("data/tokenizer"), 300);
  const data::Tokenizer tok = data::Tokenizer::load(file("data/tokenizer.model"));
  std::vector<int32_t> ids = tok.encode(text);
  ids.resize(std::min<size_t>(ids.size(), 16 * 12 + 1));
  data::write_token_file(file("data/val.tok"), ids, 300);

  models::Gpt model = random_model(moe_config(300), 3);
  io::save_checkpoint(file("moe.safetensors"), model, nullptr, io::TrainState{});

  CliRun r = run_gannet("moe-stats " + file("moe.safetensors") + " " + file("data") + " --batch 4 --top 3 --threads 1 --json " +
                        file("stats.json"));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "12 windows of 16 tokens, 4 windows per pass")) << r.out;
  EXPECT_TRUE(has(r.out, "block 1: 4 experts")) << r.out;
  EXPECT_TRUE(has(r.out, "block 3: 6 experts")) << r.out;
  EXPECT_TRUE(has(r.out, "\xe2\x96\x81")) << r.out;  // pieces shown with SentencePiece's word marker
  EXPECT_TRUE(has(r.out, "chart: " + file("moe.moe.svg"))) << r.out;
  EXPECT_EQ(read_file(file("moe.moe.svg")).rfind("<svg ", 0), 0u);
  const nlohmann::json j = nlohmann::json::parse(read_file(file("stats.json")));
  EXPECT_EQ(j["windows"], 12);
  EXPECT_EQ(j["layers"].size(), 2u);
  EXPECT_TRUE(j["layers"][0]["expert_stats"][0]["top_tokens"][0].contains("piece"));

  // --chart and --windows.
  r = run_gannet("moe-stats " + file("moe.safetensors") + " " + file("data") + " --windows 3 --chart " +
                 file("c.svg"));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "3 windows of 16 tokens")) << r.out;
  EXPECT_TRUE(fs::exists(file("c.svg")));

  // One-line errors: a missing data directory, one without val.tok, a dense model.
  auto one_line_error = [](const CliRun& r, const std::string& part) {
    EXPECT_NE(r.rc, 0);
    EXPECT_EQ(count(r.err, "\n"), 1u) << r.err;
    EXPECT_TRUE(has(r.err, part)) << r.err;
  };
  one_line_error(run_gannet("moe-stats " + file("moe.safetensors") + " " + file("nope")),
                 "data directory " + file("nope") + " does not exist");
  fs::create_directories(dir_ / "empty");
  one_line_error(run_gannet("moe-stats " + file("moe.safetensors") + " " + file("empty")), "has no val.tok");
  models::GptConfig dense = moe_config(300);
  dense.moe = nn::MoeConfig{};
  io::save_checkpoint(file("dense.safetensors"), random_model(dense, 1), nullptr, io::TrainState{});
  one_line_error(run_gannet("moe-stats " + file("dense.safetensors") + " " + file("data")), "has no MoE layer");
  one_line_error(run_gannet("moe-stats " + file("missing.safetensors") + " " + file("data")), "does not exist");
}
