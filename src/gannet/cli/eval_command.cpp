#include "gannet/cli/eval_command.h"

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "gannet/cli/eval_encoder.h"
#include "gannet/cli/eval_vlmoe.h"
#include "gannet/cli/eval_vlmoe_classifier.h"
#include "gannet/cli/number_options.h"
#include "gannet/cli/offload_options.h"
#include "gannet/cli/vlmoe_model.h"
#include "gannet/data/token_file.h"
#include "gannet/infer/evaluate.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/kernels/gemm.h"
#include "gannet/train/evaluate.h"

namespace gannet::cli {

namespace {
// The first tensor of the weights (or scale of a quantized one) holding NaN or inf, as
// "tensor 'wte.weight' holds nan at element 3"; empty when every value is finite.
std::string first_non_finite(const io::GptWeights& w) {
  auto scan = [](const std::string& name, const Tensor& t) -> std::string {
    const Tensor f = as_f32(t);
    const float* p = f.f32();
    for (int64_t i = 0, n = f.numel(); i < n; ++i)
      if (!std::isfinite(p[i])) return str("tensor '", name, "' holds ", p[i], " at element ", i);
    return "";
  };
  for (const auto& [name, t] : w.tensors)
    if (std::string found = scan(name, t); !found.empty()) return found;
  for (const auto& [name, q] : w.quantized)
    if (std::string found = scan(name + ".scale", q.scale); !found.empty()) return found;
  return "";
}

// A loss that is NaN or inf is an error, not a figure: it names the tensor that caused it if one
// holds non-finite values.
void check_loss(double loss, const io::GptWeights& w, const std::string& path) {
  if (std::isfinite(loss)) return;
  const std::string bad = first_non_finite(w);
  fail(str(path, ": the loss is ", loss, bad.empty() ? " (every weight is finite; the activations overflow)" : ": " + bad));
}

struct EvalArgs {
  std::string model, data;
  int64_t seq_len = 0, batch = 8, max_batches = 0;
  int threads = 0;
  OffloadArgs offload;
  bool engine = false;
};
}  // namespace

void add_eval_command(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "Loss and perplexity of a GPT on a token file; an encoder's accuracy and macro-F1 on a classification set "
      "(beside the majority baseline), or its masked-token accuracy on a token file; a VL-MoE's ITC loss and "
      "image-text retrieval (R@1, R@5) on the held-out glyph splits, or its zero-shot Fashion-MNIST accuracy; a VL-MoE "
      "image classifier's accuracy");
  cmd->add_option("--model,-m", a->model,
                  "model or checkpoint (.safetensors), a sharded checkpoint (its manifest.json or directory), or a "
                  "Hugging Face GPT-2 directory")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--data,-d", a->data,
                  "token file, e.g. data/brown/val.tok, or for an encoder classifier a classification set, e.g. "
                  "data/brown/tasks/brown-genre/val.safetensors, or for a VL-MoE a glyph data directory, e.g. data/glyphs")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--seq-len", a->seq_len, "window length (0 = the model's n_ctx)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::at_least(0)));
  cmd->add_option("--batch", a->batch, "windows per batch (VL-MoE: pairs per ITC batch)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::closed(1, kMaxBatchOption)));
  cmd->add_option("--max-batches", a->max_batches, "stop after this many batches (0 = whole file; VL-MoE: per split)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::closed(0, 1LL << 40)));
  add_threads_option(cmd, a->threads);
  add_offload_options(cmd, a->offload);
  cmd->add_flag("--engine", a->engine,
                "run on the inference engine (always so for quantized models and packed low-bit encoders, which run on its "
                "integer kernels)");
  cmd->callback([a]() {
    if (a->threads > 0) kernels::set_num_threads(a->threads);
    const bool streamed = offload_to_disk(a->offload);
    if (is_vlmoe_classifier_model(a->model)) {
      GANNET_CHECK(a->seq_len == 0 && !streamed && !a->engine, "--seq-len, --offload and --engine are for GPT models; ",
                   a->model, " is a VL-MoE image classifier");
      eval_vlmoe_classifier(a->model, a->data, a->batch, a->max_batches);
      return;
    }
    if (is_vlmoe_model(a->model)) {
      GANNET_CHECK(a->seq_len == 0 && !streamed && !a->engine, "--seq-len, --offload and --engine are for GPT models; ",
                   a->model, " is a VL-MoE");
      eval_vlmoe(a->model, a->data, a->batch, a->max_batches);
      return;
    }
    std::error_code ec;
    GANNET_CHECK(!std::filesystem::is_directory(a->data, ec), "--data ", a->data,
                 " is a directory; a GPT or an encoder is evaluated on a file (a directory is a VL-MoE's glyph data)");
    if (is_encoder_model(a->model)) {
      GANNET_CHECK(a->seq_len == 0, "--seq-len is for GPT models; ", a->model, " is an encoder");
      GANNET_CHECK(!streamed, "--offload is for GPT models; ", a->model, " is an encoder");
      eval_encoder(a->model, a->data, a->batch, a->max_batches, a->engine);
      return;
    }
    io::GptWeights w = io::read_gpt_weights(a->model);
    if (a->engine || w.is_quantized() || streamed) {
      const int64_t T = a->seq_len > 0 ? a->seq_len : w.config.n_ctx;
      GANNET_CHECK(T <= w.config.n_ctx, "--seq-len ", T, " is longer than the model's n_ctx ", w.config.n_ctx);
      infer::EngineOptions eo;
      eo.max_context = T;
      apply_offload(a->offload, a->model, eo);
      infer::Engine engine(w, eo);
      data::TokenFile file = data::TokenFile::open(a->data);
      infer::TextLoss r = infer::evaluate_text(engine, file, T, a->max_batches * a->batch);
      check_loss(r.loss, w, a->model);
      std::printf("loss %.4f  perplexity %.2f  (%ld tokens, engine%s%s)\n", r.loss, r.perplexity, (long)r.tokens,
                  w.is_quantized() ? ", " : "", w.scheme.c_str());
      return;
    }
    // The weights already read (any format read_gpt_weights takes: a gannet file, a sharded
    // checkpoint, a Hugging Face GPT-2 directory) into a training model of their config.
    models::Gpt model(w.config);
    io::load_gpt_weights(w, model);
    w = io::GptWeights{};  // the model holds its own copy
    int64_t T = a->seq_len > 0 ? a->seq_len : model.config().n_ctx;
    GANNET_CHECK(T <= model.config().n_ctx, "--seq-len ", T, " is longer than the model's n_ctx ", model.config().n_ctx);
    data::TokenFile file = data::TokenFile::open(a->data);
    GANNET_CHECK(file.vocab_size() <= model.config().vocab_size, a->data, " has vocabulary ", file.vocab_size(),
                 ", larger than the model's ", model.config().vocab_size);
    train::EvalResult r = train::evaluate(model, file, T, a->batch, a->max_batches);
    if (!std::isfinite(r.loss)) check_loss(r.loss, io::read_gpt_weights(a->model), a->model);  // w was released
    std::printf("loss %.4f  perplexity %.2f  (%ld tokens)\n", r.loss, r.perplexity, (long)r.tokens);
  });
}

}  // namespace gannet::cli
