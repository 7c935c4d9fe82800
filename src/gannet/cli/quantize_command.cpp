#include "gannet/cli/quantize_command.h"

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "gannet/cli/calibration_batches.h"
#include "gannet/cli/eval_encoder.h"
#include "gannet/cli/number_options.h"
#include "gannet/cli/quantize_encoder.h"
#include "gannet/compress/lkd.h"
#include "gannet/compress/quant_config.h"
#include "gannet/core/rng.h"
#include "gannet/data/token_file.h"
#include "gannet/infer/engine.h"
#include "gannet/infer/sampler.h"
#include "gannet/kernels/gemm.h"
#include "gannet/train/progress.h"

namespace gannet::cli {

namespace {
struct QuantizeArgs {
  std::string in, out, scheme, config, calib, embedding = "default", lm_head = "default";
  int64_t group = 64, lkd_steps = 0, calib_batches = 16, calib_batch = 8, calib_seq_len = 128;
  float lkd_lr = 1e-4f;
  bool asymmetric = false, static_activations = false, data_free = false, no_progress = false;
  bool asymmetric_activations = false;
  uint64_t seed = 1;
  int threads = 0;
};

// ZeroQuant's data-free setting: sequences the float model samples itself (temperature 1, from a
// random first token), B at a time with continuous batching on the engine.
std::vector<Tensor> sampled_batches(const io::GptWeights& w, int64_t n, int64_t B, int64_t T, uint64_t seed,
                                    train::ProgressBar* bar) {
  infer::EngineOptions eo;
  eo.max_sequences = B;
  eo.max_context = T;
  infer::Engine engine(w, eo);
  const int64_t V = w.config.vocab_size;
  Rng rng(seed);
  std::vector<Tensor> out;
  std::vector<float> logits(B * V);
  for (int64_t i = 0; i < n; ++i) {
    Tensor t = Tensor::empty({B, T}, DType::i32);
    int32_t* tok = t.data<int32_t>();
    std::vector<infer::Sampler> samplers;
    for (int64_t b = 0; b < B; ++b) {
      engine.reset(b);
      infer::SamplingParams p;
      p.seed = rng.next_u64();
      samplers.emplace_back(p, V);
      tok[b * T] = (int32_t)rng.below((uint64_t)V);
    }
    for (int64_t pos = 0; pos + 1 < T; ++pos) {
      std::vector<infer::Chunk> chunks;
      for (int64_t b = 0; b < B; ++b) chunks.push_back({b, std::span<const int32_t>(tok + b * T + pos, 1)});
      engine.forward(chunks, logits.data());
      for (int64_t b = 0; b < B; ++b)
        tok[b * T + pos + 1] = samplers[b].sample(std::span<const float>(logits.data() + b * V, V));
      if (bar) bar->update(i * (T - 1) + pos + 1, "sampling calibration text");
    }
    out.push_back(t);
  }
  return out;
}

double file_mb(const std::string& path) { return (double)std::filesystem::file_size(path) / 1e6; }
}  // namespace

void add_quantize_command(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "quantize",
      "Quantize a GPT to int8/int4 (ZeroQuant): packed integers, integer kernels, optional LKD; or a classifier "
      "encoder (w8a8, w4a8, w4a4) by round to nearest or LKD");
  cmd->add_option("--in,-i", a->in, "float model: gannet .safetensors (GPT or encoder) or HF GPT-2 directory")
      ->required();
  cmd->add_option("--out,-o", a->out, "quantized model to write (.safetensors)")->required();
  CLI::Option* scheme_option =
      cmd->add_option("--scheme", a->scheme,
                      "w8a8 | w4a8 | w8a16 | w4a16 | mixed (W8 attention, W4 MLP, A8) | w4a4 (int4 inputs too); "
                      "encoders: w8a8 | w4a8 | w4a4")
          ->check(CLI::IsMember(compress::scheme_names()));
  CLI::Option* config = cmd->add_option("--config", a->config,
                                        "scheme from a JSON file with DeepSpeed's compression_training keys "
                                        "(docs/quantization.md)")
                            ->check(CLI::ExistingFile)
                            ->excludes(scheme_option);
  std::vector<CLI::Option*> preset_options = {
      cmd->add_option("--group", a->group, "input columns per weight scale (multiple of 32; 0 = one scale per row)")
          ->capture_default_str()
          ->check(number_in<int64_t>(NumberRange::at_least(0))),
      cmd->add_flag("--asymmetric", a->asymmetric, "asymmetric weights (a zero point per group)"),
      cmd->add_option("--embedding", a->embedding, "token embedding: default (the scheme's narrowest), f32, int8, int4")
          ->capture_default_str(),
      cmd->add_option("--lm-head", a->lm_head, "LM head: default, f32, int8, int4 (stored apart if it differs)")
          ->capture_default_str(),
      cmd->add_flag("--static-activations", a->static_activations,
                    "one calibrated int8 scale per product instead of one per token (needs --calib or --data-free)")};
  for (CLI::Option* o : preset_options) config->excludes(o);
  cmd->add_option("--lkd-steps", a->lkd_steps, "layer-by-layer distillation steps per block (0 = plain rounding)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::at_least(0)));
  cmd->add_option("--lkd-lr", a->lkd_lr, "LKD learning rate (cosine-decayed over each block's steps)")
      ->capture_default_str()
      ->check(number_in<float>(NumberRange::above(0)));
  cmd->add_option("--calib", a->calib, "calibration token file (e.g. data/brown/train.tok); an encoder: a classification split (data/brown/tasks/brown-mode/train.safetensors)")->check(CLI::ExistingFile);
  cmd->add_flag("--data-free", a->data_free, "calibrate on text the float model samples itself");
  cmd->add_option("--calib-batches", a->calib_batches, "calibration batches")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::closed(1, kMaxBatchOption)));
  cmd->add_option("--calib-batch", a->calib_batch, "sequences per batch")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::closed(1, kMaxBatchOption)));
  cmd->add_option("--calib-seq-len", a->calib_seq_len, "tokens per sequence (at most the model's n_ctx)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::at_least(1)));
  cmd->add_option("--seed", a->seed, "calibration sampling seed")
      ->capture_default_str()
      ->check(number_in<uint64_t>(NumberRange::at_least(0)));
  cmd->add_flag("--asymmetric-activations", a->asymmetric_activations,
                "w4a4: int4 inputs with a zero point per token");
  add_threads_option(cmd, a->threads);
  cmd->add_flag("--no-progress", a->no_progress, "no progress bar");
  cmd->callback([a]() {
    if (a->threads > 0) kernels::set_num_threads(a->threads);
    if (is_encoder_model(a->in)) {
      GANNET_CHECK(a->config.empty() && !a->data_free && !a->asymmetric && !a->static_activations &&
                       a->embedding == "default" && a->lm_head == "default" && a->calib_seq_len == 128,
                   "quantize: an encoder takes --scheme, --group, --asymmetric-activations and LKD's --lkd-steps, ",
                   "--lkd-lr, --calib (a classification split), --calib-batches, --calib-batch and --seed ",
                   "(quantization-aware W4A4 is `gannet compress` with task nxm)");
      GANNET_CHECK(!a->scheme.empty(), "give --scheme w8a8, w4a8 or w4a4");
      GANNET_CHECK(a->lkd_steps == 0 || !a->calib.empty(),
                   "--lkd-steps on an encoder needs --calib, a classification split (e.g. ",
                   "data/brown/tasks/brown-mode/train.safetensors)");
      GANNET_CHECK(a->lkd_steps > 0 || a->calib.empty(), "--calib on an encoder is only used by --lkd-steps");
      EncoderLkdArgs lkd;
      lkd.steps = a->lkd_steps;
      lkd.lr = a->lkd_lr;
      lkd.calib = a->calib;
      lkd.batches = a->calib_batches;
      lkd.batch = a->calib_batch;
      lkd.seed = a->seed;
      lkd.progress = !a->no_progress;
      return quantize_encoder(a->in, a->out, a->scheme, a->group, a->asymmetric_activations, lkd);
    }
    const auto t0 = std::chrono::steady_clock::now();
    compress::SchemeOptions so;
    so.group = a->group;
    so.symmetric = !a->asymmetric;
    so.embedding = a->embedding;
    so.lm_head = a->lm_head;
    so.static_activations = a->static_activations;
    so.asymmetric_activations = a->asymmetric_activations;
    GANNET_CHECK(!(a->asymmetric_activations && !a->config.empty()),
                 "--asymmetric-activations is part of --config's activation_quantization (quantization_type)");
    GANNET_CHECK(!a->scheme.empty() || !a->config.empty(), "give --scheme NAME or --config FILE");
    const compress::QuantScheme scheme =
        a->config.empty() ? compress::scheme_preset(a->scheme, so) : compress::read_scheme_config(a->config);
    GANNET_CHECK(!(a->data_free && !a->calib.empty()), "--calib and --data-free exclude each other");
    const bool need_data = a->lkd_steps > 0 || scheme.static_activations;
    GANNET_CHECK(!need_data || a->data_free || !a->calib.empty(),
                 a->lkd_steps > 0 ? "--lkd-steps" : "static activation scales", " need calibration text: --calib FILE or --data-free");
    GANNET_CHECK(need_data || (!a->data_free && a->calib.empty()),
                 "calibration text is only used by --lkd-steps or --static-activations");
    GANNET_CHECK(a->lkd_steps >= 0, "--lkd-steps must be >= 0");

    const io::GptWeights fp = io::read_gpt_weights(a->in);
    compress::check_quantizable(fp.config, a->lkd_steps > 0, scheme.static_activations);
    std::printf("%s: %s\n", a->in.c_str(), scheme.describe().c_str());
    const int64_t T = std::min<int64_t>(a->calib_seq_len, fp.config.n_ctx);
    std::vector<Tensor> batches;
    if (a->data_free && need_data) {
      std::unique_ptr<train::ProgressBar> bar;
      if (!a->no_progress) bar = std::make_unique<train::ProgressBar>(a->calib_batches * (T - 1));
      batches = sampled_batches(fp, a->calib_batches, a->calib_batch, T, a->seed, bar.get());
      if (bar) bar->finish();
    } else if (need_data) {
      batches = file_batches(a->calib, fp.config, a->calib_batches, a->calib_batch, T, a->seed);
    }
    compress::LkdOptions lo;
    lo.steps = a->lkd_steps;
    lo.lr = a->lkd_lr;
    lo.seed = a->seed;
    std::unique_ptr<train::ProgressBar> bar;
    if (!a->no_progress && a->lkd_steps > 0) bar = std::make_unique<train::ProgressBar>(fp.config.n_layer * a->lkd_steps);
    compress::QuantizeResult r = compress::quantize_with_lkd(
        fp, scheme, batches, lo, [&](int64_t done, int64_t, const std::string& info) {
          if (bar) bar->update(done, info);
        });
    if (bar) bar->finish();
    std::string notes = str("scheme ", scheme.describe(), "; ",
                            a->lkd_steps > 0 ? str("LKD ", a->lkd_steps, " steps per block, lr ", a->lkd_lr, ", ",
                                                   a->data_free ? "data-free" : "calibration " + a->calib)
                                             : std::string("plain rounding"));
    r.model.quantization_notes = notes;
    io::write_gpt_weights(a->out, r.model);
    for (const auto& l : r.layers)
      std::printf("%s %.3g after plain rounding, %.3g after LKD (%.1f%%%s)\n",
                  l.layer >= 0 ? str("block ", l.layer, ": output mse").c_str() : "lm head: kl divergence",
                  l.mse_before, l.mse_after, 100.0 * (l.mse_after / std::max(l.mse_before, 1e-30) - 1.0),
                  l.kept_plain ? "; distillation did not help, plain rounding kept" : "");
    // The f32 model file of the same weights (no optimizer state), the size to compare with.
    double f32_mb = 0;
    for (const auto& [name, shape] : io::gpt_weight_shapes(fp.config)) f32_mb += 4.0 * (double)shape_numel(shape) / 1e6;
    const double out_mb = file_mb(a->out);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("wrote %s: %.2f MB, %.3fx the %.2f MB of an f32 model file (%.1f s)\n", a->out.c_str(), out_mb,
                out_mb / f32_mb, f32_mb, secs);
  });
}

}  // namespace gannet::cli
