#include "gannet/train/trainer.h"

#include <csignal>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "gannet/autograd/tape.h"
#include "gannet/data/token_file.h"
#include "gannet/data/window_sampler.h"
#include "gannet/io/checkpoint.h"
#include "gannet/kernels/gemm.h"
#include "gannet/optim/clip.h"
#include "gannet/train/evaluate.h"
#include "gannet/train/progress.h"

namespace gannet::train {

namespace {
volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }

// Installs SIGINT/SIGTERM handlers for the life of the object, restoring the old ones after.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signal = 0;
    old_int_ = std::signal(SIGINT, on_stop_signal);
    old_term_ = std::signal(SIGTERM, on_stop_signal);
  }
  ~StopSignals() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
}  // namespace

std::string checkpoint_path(const TrainConfig& config) {
  return (std::filesystem::path(config.out_dir) / "checkpoint.safetensors").string();
}

TrainResult run_training(const TrainConfig& cfg, const TrainOptions& opt) {
  if (cfg.threads > 0) kernels::set_num_threads(cfg.threads);
  namespace fs = std::filesystem;
  const fs::path dir(cfg.data_dir);
  for (const char* f : {"train.tok", "val.tok"})
    GANNET_CHECK(fs::exists(dir / f), "missing ", (dir / f).string(), ": run `gannet data prepare --out ",
                 cfg.data_dir, "` first");
  data::TokenFile train_file = data::TokenFile::open((dir / "train.tok").string());
  data::TokenFile val_file = data::TokenFile::open((dir / "val.tok").string());
  GANNET_CHECK(train_file.vocab_size() <= cfg.model.vocab_size, "the data in ", cfg.data_dir, " has vocabulary ",
               train_file.vocab_size(), ", more than model.vocab_size ", cfg.model.vocab_size);

  models::Gpt model(cfg.model);
  model.init(cfg.seed);
  optim::AdamW adamw(model.parameters(), cfg.adamw);
  data::WindowSampler sampler(train_file, cfg.seq_len, cfg.seed + 1);
  const std::string ckpt = checkpoint_path(cfg);
  int64_t step = 0;
  if (opt.resume) {
    GANNET_CHECK(fs::exists(ckpt), "--resume: no checkpoint at ", ckpt);
    io::TrainState st;
    io::load_checkpoint(ckpt, model, &adamw, &st);
    step = st.step;
    sampler.rng().set_state(st.rng);
    GANNET_CHECK(step <= cfg.steps, ckpt, " is at step ", step, ", past train_steps ", cfg.steps);
  }
  fs::create_directories(cfg.out_dir);
  std::ofstream metrics((fs::path(cfg.out_dir) / "metrics.jsonl").string(),
                        opt.resume ? std::ios::app : std::ios::trunc);
  GANNET_CHECK(metrics.good(), "cannot write ", (fs::path(cfg.out_dir) / "metrics.jsonl").string());

  const int64_t B = cfg.micro_batch, T = cfg.seq_len;
  const int64_t tokens_per_step = B * T * cfg.grad_accum;
  Tensor tokens = Tensor::empty({B, T}, DType::i32);
  Tensor targets = Tensor::empty({B, T}, DType::i32);
  const auto& params = model.parameters();
  const float accum_scale = 1.f / (float)cfg.grad_accum;

  auto save = [&](int64_t at_step) {
    io::TrainState st;
    st.step = at_step;
    st.rng = sampler.rng().state();
    st.train_config = cfg.text;
    io::save_checkpoint(ckpt, model, &adamw, st);
  };

  std::fprintf(stderr, "gannet train: %.2fM parameters, %ld steps of %ld tokens, data %s (%ld train tokens)\n",
               (double)nn::count_elements(params) / 1e6, (long)cfg.steps, (long)tokens_per_step,
               cfg.data_dir.c_str(), (long)train_file.size());
  StopSignals signals;
  ProgressBar bar(cfg.steps, step);
  TrainResult result;
  auto t_start = std::chrono::steady_clock::now();
  double ema_tps = 0, last_loss = 0;
  int64_t stop_at = opt.stop_after >= 0 ? std::min(cfg.steps, step + opt.stop_after) : cfg.steps;

  while (step < stop_at) {
    auto t0 = std::chrono::steady_clock::now();
    float lr = cfg.schedule.at(step);
    nn::zero_grad(params);
    double loss_sum = 0;
    for (int64_t micro = 0; micro < cfg.grad_accum; ++micro) {
      sampler.next(tokens, targets);
      autograd::Var loss = model.loss(tokens, targets);
      loss_sum += loss.value().f32()[0];
      autograd::tape().backward(loss);
    }
    double norm = optim::global_grad_norm(params, accum_scale);
    GANNET_CHECK(std::isfinite(loss_sum) && std::isfinite(norm), "training diverged at step ", step,
                 ": loss ", loss_sum / cfg.grad_accum, ", gradient norm ", norm, " (lower the learning rate)");
    adamw.step(lr, accum_scale * optim::clip_factor(norm, cfg.grad_clip));
    ++step;
    last_loss = loss_sum / (double)cfg.grad_accum;
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double tps = (double)tokens_per_step / dt;
    ema_tps = ema_tps == 0 ? tps : 0.9 * ema_tps + 0.1 * tps;
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    metrics << nlohmann::json{{"step", step},     {"loss", last_loss}, {"lr", lr},
                              {"grad_norm", norm}, {"tokens", step * tokens_per_step},
                              {"tokens_per_s", tps}, {"elapsed_s", elapsed}}
                   .dump()
            << "\n";
    if (opt.progress)
      bar.update(step, "loss " + fmt("%.4f", last_loss) + " | " + fmt("%.0f", ema_tps) + " tok/s | lr " +
                           fmt("%.2e", lr));
    bool last = step == cfg.steps;
    if (!last && cfg.eval_interval > 0 && step % cfg.eval_interval == 0) {
      EvalResult ev = evaluate(model, val_file, T, B, cfg.eval_batches);
      metrics << nlohmann::json{{"step", step}, {"val_loss", ev.loss}, {"val_ppl", ev.perplexity}}.dump() << "\n";
      if (opt.progress) bar.message("step " + std::to_string(step) + ": val loss " + fmt("%.4f", ev.loss) +
                                    ", perplexity " + fmt("%.1f", ev.perplexity));
    }
    metrics.flush();
    if (!last && cfg.checkpoint_interval > 0 && step % cfg.checkpoint_interval == 0) save(step);
    if (g_stop_signal) {
      result.interrupted = true;
      break;
    }
  }
  if (opt.progress) bar.finish();
  save(step);
  result.checkpoint = ckpt;
  result.steps_done = step;
  result.final_train_loss = last_loss;
  result.tokens_per_second = ema_tps;
  if (result.interrupted) {
    std::fprintf(stderr, "interrupted: checkpoint at step %ld written to %s (continue with --resume)\n", (long)step,
                 ckpt.c_str());
    return result;
  }
  if (step == cfg.steps) {
    EvalResult ev = evaluate(model, val_file, T, B, 0);
    result.val_loss = ev.loss;
    result.val_perplexity = ev.perplexity;
    metrics << nlohmann::json{{"step", step}, {"val_loss", ev.loss}, {"val_ppl", ev.perplexity}, {"final", true}}.dump()
            << "\n";
  }
  return result;
}

}  // namespace gannet::train
