#include "gannet/cli/input_stats_command.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>

#include "gannet/cli/calibration_batches.h"
#include "gannet/cli/number_options.h"
#include "gannet/compress/input_statistics.h"
#include "gannet/kernels/gemm.h"

namespace gannet::cli {

namespace {
struct InputStatsArgs {
  std::string model, calib;
  int64_t batches = 8, batch = 8, seq_len = 128;
  uint64_t seed = 1;
  int threads = 0;
};

void print(const std::vector<compress::InputStatistics>& stats) {
  std::printf("%-24s %8s %8s %8s %-16s %8s %9s %9s %9s\n", "product input", "max|x|", "median", "outlier",
              "top channels", "balance", "err int8", "err int4", "int4 asym");
  for (const compress::InputStatistics& s : stats) {
    std::string top;
    for (int64_t c : s.top_channels) top += str(top.empty() ? "" : ",", c);
    const std::string name = s.product.substr(0, s.product.size() - std::string(".weight").size());
    std::printf("%-24s %8.3f %8.3f %7.1fx %-16s %8.3f %9.2e %9.2e %9.2e\n", name.c_str(), s.max_abs,
                s.median_channel_max, s.outlier_ratio(), top.c_str(), s.balance, s.error_int8, s.error_int4,
                s.error_int4_asym);
  }
  std::printf(
      "(median: of the channels' largest |x|; outlier: max|x| / median; balance: mean over tokens of\n"
      " min(-lo, hi) / max(-lo, hi), 1 = even around 0, 0 = one-sided; err: sum ||x - q(x)||^2 / sum ||x||^2\n"
      " with q token-wise int8, int4 symmetric, int4 asymmetric)\n");
}
}  // namespace

void add_input_stats_command(CLI::App& app) {
  auto a = std::make_shared<InputStatsArgs>();
  CLI::App* cmd = app.add_subcommand(
      "input-stats",
      "The inputs of a GPT's block products on calibration text: outlier channels, one-sidedness, and the error "
      "token-wise int8, int4 and asymmetric int4 quantization leave");
  cmd->add_option("--model,-m", a->model, "GPT model or checkpoint (.safetensors; float or quantized)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--calib", a->calib, "calibration token file (e.g. data/brown/train.tok)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--calib-batches", a->batches, "batches")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::closed(1, kMaxBatchOption)));
  cmd->add_option("--calib-batch", a->batch, "sequences per batch")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::closed(1, kMaxBatchOption)));
  cmd->add_option("--calib-seq-len", a->seq_len, "tokens per sequence (at most the model's n_ctx)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::at_least(1)));
  cmd->add_option("--seed", a->seed, "window sampling seed")->capture_default_str();
  add_threads_option(cmd, a->threads);
  cmd->callback([a]() {
    if (a->threads > 0) kernels::set_num_threads(a->threads);
    const io::GptWeights w = io::read_gpt_weights(a->model);
    GANNET_CHECK(!w.config.moe.enabled(), a->model, ": an MoE GPT; input-stats takes dense GPTs");
    const int64_t T = std::min<int64_t>(a->seq_len, w.config.n_ctx);
    const auto batches = file_batches(a->calib, w.config, a->batches, a->batch, T, a->seed);
    std::printf("%s: block product inputs over %ld windows of %ld tokens of %s\n", a->model.c_str(),
                (long)(a->batches * a->batch), (long)T, a->calib.c_str());
    print(compress::input_statistics(w, batches));
  });
}

}  // namespace gannet::cli
