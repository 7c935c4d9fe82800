#include "gannet/cli/moe_stats_command.h"

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "gannet/cli/moe_stats_vlmoe.h"
#include "gannet/cli/number_options.h"
#include "gannet/cli/vlmoe_model.h"
#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"
#include "gannet/data/token_file.h"
#include "gannet/data/tokenizer.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/kernels/gemm.h"
#include "gannet/train/moe_chart.h"
#include "gannet/train/moe_report.h"
#include "gannet/train/moe_stats.h"

namespace gannet::cli {

namespace {
namespace fs = std::filesystem;

struct MoeStatsArgs {
  std::string model, data, chart, json, split = "test_chars";
  const CLI::Option* split_option = nullptr;  // given or not: --split is for a VL-MoE only
  train::MoeStatsOptions options;
  int threads = 0;
};

void run_vlmoe(const MoeStatsArgs& a) {
  GANNET_CHECK(a.options.seq_len == 0, "--seq-len is for GPT-MoE models; ", a.model, " is a VL-MoE");
  VlMoeStatsRequest q{a.model, a.data, a.split, a.chart, a.json, a.options};
  run_vlmoe_moe_stats(q);
}

void run(const MoeStatsArgs& a) {
  if (a.threads > 0) kernels::set_num_threads(a.threads);
  if (is_vlmoe_model(a.model)) return run_vlmoe(a);
  GANNET_CHECK(a.split_option->count() == 0, "--split is for VL-MoE models; ", a.model, " is a GPT");
  GANNET_CHECK(fs::exists(a.model), "model ", a.model, " does not exist");
  std::error_code ec;
  GANNET_CHECK(fs::exists(a.data, ec), "data directory ", a.data, " does not exist (make one with `gannet data prepare`)");
  GANNET_CHECK(fs::is_directory(a.data, ec), a.data,
               " is not a directory (give the data directory that holds val.tok and tokenizer.model)");
  const fs::path val = fs::path(a.data) / "val.tok", tok_path = fs::path(a.data) / "tokenizer.model";
  GANNET_CHECK(fs::is_regular_file(val, ec), "data directory ", a.data,
               " has no val.tok (make one with `gannet data prepare`)");
  GANNET_CHECK(fs::is_regular_file(tok_path, ec), "data directory ", a.data, " has no tokenizer.model");

  io::GptWeights w = io::read_gpt_weights(a.model);
  GANNET_CHECK(w.config.moe.enabled(), a.model, " has no MoE layer (a dense GPT); moe-stats needs a GPT-MoE");
  GANNET_CHECK(a.options.seq_len <= w.config.n_ctx, "--seq-len ", a.options.seq_len, " is longer than the model's n_ctx ",
               w.config.n_ctx);
  models::Gpt model(w.config);
  io::load_gpt_weights(w, model);
  w = io::GptWeights();  // the model holds its own copy

  data::TokenFile file = data::TokenFile::open(val.string());
  data::Tokenizer tok = data::Tokenizer::load(tok_path.string());
  GANNET_CHECK(file.vocab_size() <= tok.vocab_size(), val.string(), " has vocabulary ", file.vocab_size(),
               ", larger than its tokenizer's ", tok.vocab_size());
  train::TokenName name = [&tok](int32_t id) { return tok.piece(id); };

  const auto t0 = std::chrono::steady_clock::now();
  train::MoeStats stats = train::analyze_moe(model, file, a.options);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::printf("moe-stats: %s on %s: ", a.model.c_str(), val.string().c_str());
  std::fputs(train::format_moe_table(stats, name).c_str(), stdout);

  const std::string chart =
      a.chart.empty() ? fs::path(a.model).lexically_normal().replace_extension(".moe.svg").string() : a.chart;
  train::MoeChartOptions co;
  co.title = a.model;
  co.token_name = name;
  train::write_moe_chart(stats, chart, co);
  std::printf("\nchart: %s\n", chart.c_str());
  if (!a.json.empty()) {
    nlohmann::json j = train::moe_stats_json(stats, name);
    j["model"] = a.model;
    j["data"] = val.string();
    j["seed"] = a.options.seed;
    write_file_atomic(a.json, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    std::printf("json: %s\n", a.json.c_str());
  }
  std::printf("analyzed in %.1f s\n", secs);
}
}  // namespace

void add_moe_stats_command(CLI::App& app) {
  auto a = std::make_shared<MoeStatsArgs>();
  CLI::App* cmd = app.add_subcommand(
      "moe-stats",
      "Routing analysis of a GPT-MoE on a data directory's validation windows: per MoE layer the tokens routed, "
      "capacity, expert load before and after the capacity limit, dropped fraction, router entropy, balance loss "
      "and each expert's most frequent tokens; writes an SVG chart of expert load. On a VL-MoE, over a glyph split: "
      "per modality (image and text tokens routed to each expert, the image share), with a chart per modality");
  cmd->add_option("model", a->model, "GPT-MoE model or checkpoint (.safetensors, or a sharded checkpoint: its manifest.json or directory), or a "
                  "VL-MoE checkpoint")->required();
  cmd->add_option("data", a->data, "data directory from `gannet data prepare` (its val.tok and tokenizer.model; for a VL-MoE, the glyph "
                  "data directory)")
      ->required();
  cmd->add_option("--windows", a->options.max_windows,
                  "validation windows to analyze, from the start of val.tok (VL-MoE: pairs of the split) (0 = all)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::at_least(0)));
  cmd->add_option("--seq-len", a->options.seq_len, "window length (0 = the model's n_ctx)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::at_least(0)));
  cmd->add_option("--batch", a->options.batch,
                  "windows (VL-MoE: pairs) per forward pass (the capacity limit applies to each pass's tokens)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::closed(1, kMaxBatchOption)));
  cmd->add_option("--top", a->options.top, "most frequent tokens listed per expert")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::at_least(0)));
  cmd->add_option("--chart", a->chart,
                  "SVG chart to write (default: MODEL with the extension .moe.svg; VL-MoE: two, with .image and .text "
                  "before the extension)");
  a->split_option = cmd->add_option("--split", a->split, "VL-MoE only: the glyph split to analyze")
      ->capture_default_str()
      ->check(CLI::IsMember({"train", "test_chars", "test_blocks"}));
  cmd->add_option("--json", a->json, "also write every number to this JSON file");
  cmd->add_option("--seed", a->options.seed, "random token selection: pass i uses seed + i")
      ->capture_default_str()
      ->check(number_in<uint64_t>(NumberRange::at_least(0)));
  add_threads_option(cmd, a->threads);
  cmd->callback([a]() { run(*a); });
}

}  // namespace gannet::cli
