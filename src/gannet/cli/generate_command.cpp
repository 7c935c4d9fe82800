#include "gannet/cli/generate_command.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>

#include "gannet/cli/model_options.h"
#include "gannet/cli/offload_options.h"
#include "gannet/cli/tensor_parallel_option.h"
#include "gannet/dist/communicator.h"
#include "gannet/cli/number_options.h"
#include "gannet/infer/engine.h"
#include "gannet/infer/scheduler.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/kernels/gemm.h"

namespace gannet::cli {

namespace {

struct GenerateArgs {
  std::string model, tokenizer, prompt, weights = "f32";
  int64_t max_tokens = 64;
  infer::SamplingParams sampling{
      .temperature = 0.8f, .top_k = 40, .top_p = 1.0f, .repetition_penalty = 1.0f, .seed = 1};
  std::vector<std::string> stop;
  bool ignore_eos = false;
  int threads = 0;
  OffloadArgs offload;
  TensorParallelArgs tensor_parallel;
};

void run(const GenerateArgs& a) {
  if (a.threads > 0) kernels::set_num_threads(a.threads);
  a.sampling.validate();
  std::unique_ptr<data::TextTokenizer> tok = load_tokenizer_for(a.model, a.tokenizer);
  std::vector<int32_t> prompt = tok->encode(a.prompt);
  if (prompt.empty()) {
    GANNET_CHECK(tok->eos_id() >= 0, "the prompt is empty");
    prompt = {tok->eos_id()};  // unconditional text, as GPT-2 does it
  }
  GANNET_CHECK(a.max_tokens >= 1, "--max-tokens must be >= 1, got ", a.max_tokens);

  std::unique_ptr<infer::Engine> engine;
  {
    io::GptWeights w = io::read_gpt_weights(a.model);  // released once the engine has its copy
    // Compared as a difference: prompt + max_tokens overflowed for max_tokens near 2^63.
    GANNET_CHECK(a.max_tokens <= w.config.n_ctx - (int64_t)prompt.size(), "the prompt (", prompt.size(),
                 " tokens) plus --max-tokens ", a.max_tokens, " is longer than the model's context of ", w.config.n_ctx,
                 " tokens");
    infer::EngineOptions o;
    o.weights = infer::parse_weight_format(a.weights);
    o.max_sequences = 1;
    o.max_context = (int64_t)prompt.size() + a.max_tokens;  // the cache holds no more than this run needs
    apply_offload(a.offload, a.model, o);
    o.tensor_parallel = tensor_parallel_group(a.tensor_parallel);
    o.expert_parallel = a.tensor_parallel.expert_parallel;
    engine = std::make_unique<infer::Engine>(w, o);
  }
  infer::Scheduler scheduler(*engine, *tok);
  infer::GenerationRequest r;
  r.prompt = prompt;
  r.sampling = a.sampling;
  r.max_tokens = a.max_tokens;
  r.stop = a.stop;
  r.ignore_eos = a.ignore_eos;
  std::shared_ptr<infer::Generation> gen = scheduler.submit(std::move(r));

  std::fputs(a.prompt.c_str(), stdout);
  std::fflush(stdout);
  std::string piece;
  while (gen->next_text(piece, std::chrono::milliseconds(100))) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  }
  const infer::GenerationResult& res = gen->wait();
  std::fputs("\n", stdout);
  std::fflush(stdout);
  GANNET_CHECK(res.finish_reason != "error", "generation failed: ", res.error);
  // The first token comes from the prompt's pass; each later one from a decode step.
  const double decode_s = res.total_s - res.time_to_first_token_s;
  char gen_speed[32] = "n/a";
  if (res.completion_tokens > 1 && decode_s > 0)
    std::snprintf(gen_speed, sizeof(gen_speed), "%.1f", (res.completion_tokens - 1) / decode_s);
  const dist::Communicator* group = engine->options().tensor_parallel;
  if (group && group->rank() != 0) return;  // rank 0 reports
  std::fprintf(stderr, "prompt: %ld tokens, %.1f tokens/s; generation: %ld tokens, %s tokens/s; finish: %s\n",
               (long)res.prompt_tokens, res.prompt_tokens / std::max(res.prefill_s, 1e-9), (long)res.completion_tokens,
               gen_speed, res.finish_reason.c_str());
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt with the inference engine, streaming the text");
  add_model_options(cmd, a->model, a->tokenizer);
  cmd->add_option("--prompt,-p", a->prompt, "text to continue")->required();
  cmd->add_option("--max-tokens,-n", a->max_tokens, "tokens to generate at most")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::at_least(1)));  // and the prompt plus these within n_ctx
  cmd->add_option("--temperature", a->sampling.temperature, "0 = greedy")
      ->capture_default_str()
      ->check(number_in<float>(NumberRange::at_least(0)));
  cmd->add_option("--top-k", a->sampling.top_k, "sample among the k likeliest tokens (0 = off)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::at_least(0)));
  cmd->add_option("--top-p", a->sampling.top_p, "sample among the likeliest tokens holding this mass (1 = off)")
      ->capture_default_str()
      ->check(number_in<float>(NumberRange::left_open(0, 1)));
  cmd->add_option("--repeat-penalty", a->sampling.repetition_penalty,
                  "divide positive (multiply negative) logits of tokens already seen (1 = off)")
      ->capture_default_str()
      ->check(number_in<float>(NumberRange::above(0)));
  cmd->add_option("--seed", a->sampling.seed, "random seed")
      ->capture_default_str()
      ->check(number_in<uint64_t>(NumberRange::at_least(0)));
  cmd->add_option("--stop", a->stop, "stop before this text (repeatable)")->allow_extra_args(false);
  cmd->add_flag("--ignore-eos", a->ignore_eos, "keep generating past the end-of-text token");
  cmd->add_option("--weights", a->weights, "weight precision in the engine")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "bf16"}));
  add_offload_options(cmd, a->offload);
  add_tensor_parallel_option(cmd, a->tensor_parallel);
  add_threads_option(cmd, a->threads);
  cmd->callback([a]() { run(*a); });
}

}  // namespace gannet::cli
