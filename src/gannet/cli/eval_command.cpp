#include "gannet/cli/eval_command.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "gannet/data/token_file.h"
#include "gannet/data/tokenizer.h"
#include "gannet/io/checkpoint.h"
#include "gannet/kernels/gemm.h"
#include "gannet/train/evaluate.h"
#include "gannet/train/sampling.h"

namespace gannet::cli {

namespace {
models::Gpt load_model(const std::string& path) {
  models::Gpt model(io::read_checkpoint_config(path));
  io::load_checkpoint(path, model, nullptr, nullptr);
  return model;
}

struct EvalArgs {
  std::string model, data;
  int64_t seq_len = 0, batch = 8, max_batches = 0;
  int threads = 0;
};

struct GenerateArgs {
  std::string model, tokenizer, prompt;
  train::SampleOptions sample;
  int threads = 0;
};
}  // namespace

void add_eval_command(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Loss and perplexity of a model on a token file");
  cmd->add_option("--model,-m", a->model, "model or checkpoint (.safetensors)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--data,-d", a->data, "token file, e.g. data/brown/val.tok")->required()->check(CLI::ExistingFile);
  cmd->add_option("--seq-len", a->seq_len, "window length (0 = the model's n_ctx)")->capture_default_str();
  cmd->add_option("--batch", a->batch, "windows per batch")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--max-batches", a->max_batches, "stop after this many batches (0 = whole file)")->capture_default_str();
  cmd->add_option("--threads,-t", a->threads, "threads (0 = all cores)")->capture_default_str();
  cmd->callback([a]() {
    if (a->threads > 0) kernels::set_num_threads(a->threads);
    models::Gpt model = load_model(a->model);
    int64_t T = a->seq_len > 0 ? a->seq_len : model.config().n_ctx;
    GANNET_CHECK(T <= model.config().n_ctx, "--seq-len ", T, " is longer than the model's n_ctx ", model.config().n_ctx);
    data::TokenFile file = data::TokenFile::open(a->data);
    GANNET_CHECK(file.vocab_size() <= model.config().vocab_size, a->data, " has vocabulary ", file.vocab_size(),
                 ", larger than the model's ", model.config().vocab_size);
    train::EvalResult r = train::evaluate(model, file, T, a->batch, a->max_batches);
    std::printf("loss %.4f  perplexity %.2f  (%ld tokens)\n", r.loss, r.perplexity, (long)r.tokens);
  });
}

void add_generate_command(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt with a trained model");
  cmd->add_option("--model,-m", a->model, "model or checkpoint (.safetensors)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--tokenizer", a->tokenizer, "SentencePiece model")
      ->default_str("data/brown/tokenizer.model")->default_val("data/brown/tokenizer.model");
  cmd->add_option("--prompt,-p", a->prompt, "text to continue")->required();
  cmd->add_option("--max-tokens,-n", a->sample.max_tokens, "tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", a->sample.temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", a->sample.top_k, "sample among the k likeliest (0 = all)")->capture_default_str();
  cmd->add_option("--seed", a->sample.seed, "random seed")->capture_default_str();
  cmd->add_option("--threads,-t", a->threads, "threads (0 = all cores)")->capture_default_str();
  cmd->callback([a]() {
    if (a->threads > 0) kernels::set_num_threads(a->threads);
    models::Gpt model = load_model(a->model);
    data::Tokenizer tok = data::Tokenizer::load(a->tokenizer);
    GANNET_CHECK(tok.vocab_size() <= model.config().vocab_size, "tokenizer ", a->tokenizer, " has ", tok.vocab_size(),
                 " pieces, more than the model's vocabulary ", model.config().vocab_size);
    std::vector<int32_t> prompt = tok.encode(a->prompt);
    a->sample.stop_token = tok.eos_id();
    std::printf("%s", a->prompt.c_str());
    std::fflush(stdout);
    // Print the text as it grows: decode the whole continuation and emit what is new.
    std::vector<int32_t> so_far;
    std::string printed;
    train::sample(model, prompt, a->sample, [&](int32_t id) {
      if (id == tok.eos_id()) return;
      so_far.push_back(id);
      std::string text = tok.decode(so_far);
      if (text.size() > printed.size() && text.compare(0, printed.size(), printed) == 0) {
        std::fputs(text.c_str() + printed.size(), stdout);
        std::fflush(stdout);
        printed = text;
      }
    });
    std::printf("\n");
  });
}

}  // namespace gannet::cli
