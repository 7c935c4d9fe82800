#include "gannet/cli/train_command.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "gannet/cli/number_options.h"
#include "gannet/core/format_number.h"
#include "gannet/core/error.h"
#include "gannet/data/tokenizer.h"
#include "gannet/io/checkpoint.h"
#include "gannet/train/sampling.h"
#include "gannet/train/trainer.h"

namespace gannet::cli {

namespace {
struct TrainArgs {
  std::string config;
  bool resume = false;
  bool no_progress = false;
  int64_t stop_after = -1;
  std::string sample_prompt = "The";
};

void run(const TrainArgs& a) {
  train::TrainConfig cfg = train::read_train_config(a.config);
  train::TrainOptions opt;
  opt.resume = a.resume;
  opt.progress = !a.no_progress;
  opt.stop_after = a.stop_after;
  train::TrainResult r = train::run_training(cfg, opt);
  if (r.interrupted) std::exit(130);
  if (r.rank != 0) return;  // under mpirun, rank 0 reports for the job
  if (r.steps_done < cfg.steps) {
    std::printf("stopped at step %ld of %ld; checkpoint %s\n", (long)r.steps_done, (long)cfg.steps,
                r.checkpoint.c_str());
    return;
  }
  // A resumed run that had finished ran no step: it has no train loss to show.
  const std::string train_loss =
      r.steps_run > 0 ? str("train loss ", format_number("%.4f", r.final_train_loss)) : "finished before this run";
  if (cfg.task != "lm") {
    std::printf("final: step %ld, %s%s\ncheckpoint: %s\n", (long)r.steps_done, train_loss.c_str(),
                r.validation.listed().c_str(), r.checkpoint.c_str());
    return;
  }
  std::printf("final: step %ld, %s, validation loss %.4f, validation perplexity %.2f\n", (long)r.steps_done,
              train_loss.c_str(), r.val_loss, r.val_perplexity);
  std::printf("checkpoint: %s\n", r.checkpoint.c_str());
  std::string tok_path = (std::filesystem::path(cfg.data_dir) / "tokenizer.model").string();
  if (!std::filesystem::exists(tok_path) || a.sample_prompt.empty()) return;
  data::Tokenizer tok = data::Tokenizer::load(tok_path);
  models::Gpt model(cfg.model);
  io::load_checkpoint(r.checkpoint, model, nullptr, nullptr);
  train::SampleOptions so;
  so.max_tokens = 48;
  so.stop_token = tok.eos_id();
  std::vector<int32_t> prompt = tok.encode(a.sample_prompt);
  std::vector<int32_t> out = train::sample(model, prompt, so);
  prompt.insert(prompt.end(), out.begin(), out.end());
  std::printf("sample: %s\n", tok.decode(prompt).c_str());
}
}  // namespace

void add_train_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model from a JSON config: a GPT (task lm), or an encoder (task mlm or classify); see configs/ and the README");
  cmd->add_option("--config,-c", args->config, "training config (JSON)")->required()->check(CLI::ExistingFile);
  cmd->add_flag("--resume", args->resume, "continue from the newest checkpoint in checkpoint.dir (checkpoint.safetensors or the sharded "
                "checkpoint/manifest.json)");
  cmd->add_flag("--no-progress", args->no_progress, "no progress bar");
  cmd->add_option("--stop-after", args->stop_after, "stop after this many steps, with a checkpoint (for testing)")
      ->check(number_in<int64_t>(NumberRange::at_least(0)));
  cmd->add_option("--sample-prompt", args->sample_prompt, "prompt of the text sample printed at the end ('' = none)")
      ->capture_default_str();
  cmd->callback([args]() { run(*args); });
}

}  // namespace gannet::cli
