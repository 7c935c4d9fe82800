// VL-MoE training-throughput benchmark (issue 21's target: VL-MoE at least 80% of the dense
// model's pairs/s). The model of a `task: vlmoe` config (default configs/glyphs_vlmoe.json; or
// configs/fashion_vlmoe.json for Fashion-MNIST) and its dense counterpart (the same config with "dense": true: V-FFN/T-FFN of the experts' width, so the
// same active FFN FLOPs per token at top-1) are trained side by side on the same batches of pairs with
// the pre-training step's work (ITC over images and texts encoded apart, the MoE auxiliary losses,
// backward, gradient clipping, AdamW), steps interleaved (dense, VL-MoE, dense, ...) so that both
// see the same machine. Prints each model's median pairs/s and the ratio.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/data/glyph_batches.h"
#include "gannet/data/image_text_pairs.h"
#include "gannet/kernels/blas_core.h"
#include "gannet/kernels/gemm.h"
#include "gannet/models/vlmoe.h"
#include "gannet/models/vlmoe_losses.h"
#include "gannet/optim/adamw.h"
#include "gannet/optim/clip.h"
#include "gannet/train/train_config.h"

using namespace gannet;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

autograd::Var plus_aux(const autograd::Var& loss, const nn::MoePass& pass) {
  return pass.aux_loss.defined() ? autograd::add(loss, pass.aux_loss) : loss;
}

struct Trainee {
  models::VlMoe model;
  optim::AdamW adamw;
  std::vector<double> seconds;
  Trainee(const models::VlMoeConfig& c, const optim::AdamWOptions& o) : model(c), adamw(model.parameters(), o) {
    model.init(1);
  }
  // One optimizer step of ITC + the MoE auxiliary losses on batch b (names: its pairs' texts, which
  // may repeat); returns its seconds.
  double step(const data::GlyphBatch& b, const std::vector<std::string>& names, float lr, uint64_t seed) {
    const auto t0 = Clock::now();
    nn::zero_grad(model.parameters());
    const models::VlMoeOutput img = model.forward({b.images, {}, {}}, seed);
    const models::VlMoeOutput txt = model.forward({{}, b.tokens, b.mask}, seed ^ 0x5851F42D4C957F2Dull);
    autograd::Var loss = models::image_text_contrastive(model.image_projection(img.image_pooled),
                                                        model.text_projection(txt.text_pooled), model.logit_scale(), names);
    loss = plus_aux(plus_aux(loss, img.image_moe), txt.text_moe);
    autograd::tape().backward(loss);
    adamw.step(lr, optim::clip_factor(optim::global_grad_norm(model.parameters()), 1.f));
    return std::chrono::duration<double>(Clock::now() - t0).count();
  }
};

}  // namespace

int main(int argc, char** argv) {
  kernels::ensure_blas_core(argv);
  CLI::App app{"gannet VL-MoE training-throughput benchmark (dense vs VL-MoE, interleaved steps)"};
  std::string config = "configs/glyphs_vlmoe.json";
  int steps = 30, warmup = 10, threads = 2;
  app.add_option("--config", config, "a task-vlmoe training config: its model, data.dir and micro-batch")
      ->capture_default_str();
  app.add_option("--warmup", warmup, "untimed steps of each model first")->capture_default_str();
  app.add_option("--steps", steps, "timed steps of each model")->capture_default_str();
  app.add_option("--threads", threads)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    if (steps < 1 || warmup < 0) throw Error("--steps must be at least 1 and --warmup at least 0");
    kernels::set_num_threads(threads);
    const train::TrainConfig cfg = train::read_train_config(config);
    if (cfg.task != "vlmoe") throw Error(config + ": task is '" + cfg.task + "', not vlmoe");
    const data::GlyphSet set = data::load_image_text_split(cfg.data_dir, "train");
    const data::GlyphTextTokenizer tokenizer = data::GlyphTextTokenizer::build(set.names);
    models::VlMoeConfig sparse = cfg.vlmoe;
    sparse.vocab_size = tokenizer.vocab_size();
    sparse.dense = false;
    models::VlMoeConfig dense = sparse;
    dense.dense = true;
    optim::AdamWOptions o;
    o.lr = 1e-3f;
    Trainee a(dense, o), b(sparse, o);
    data::GlyphBatches batches(set, tokenizer, cfg.micro_batch, sparse.text_ctx, 7);
    for (int s = 0; s < warmup + steps; ++s) {
      const data::GlyphBatch batch = batches.batch(s);
      std::vector<std::string> names;
      for (int64_t p : batch.pairs) names.push_back(set.names[(size_t)p]);
      const float lr = o.lr * std::min(1.f, (float)(s + 1) / 10.f);
      const double da = a.step(batch, names, lr, (uint64_t)s), db = b.step(batch, names, lr, (uint64_t)s);
      if (s >= warmup) a.seconds.push_back(da), b.seconds.push_back(db);
    }
    const double pairs = (double)cfg.micro_batch;
    const double pa = pairs / median(a.seconds), pb = pairs / median(b.seconds);
    const models::VlMoeFlops fa = models::active_flops_per_token(dense), fb = models::active_flops_per_token(sparse);
    std::printf("dense   params %.2fM  FFN MFLOPs/token %.2f  pairs/s %.1f\n",
                nn::count_elements(a.model.parameters()) / 1e6, (fa.ffn + fa.router) / 1e6, pa);
    std::printf("vl-moe  params %.2fM  FFN MFLOPs/token %.2f  pairs/s %.1f  (%ld experts top-%ld)\n",
                nn::count_elements(b.model.parameters()) / 1e6, (fb.ffn + fb.router) / 1e6, pb,
                (long)sparse.moe.num_experts[0], (long)sparse.moe.k);
    std::printf("vl-moe / dense pairs/s: %.3f (target >= 0.80); %d threads, %d pairs a step, median of %d steps\n",
                pb / pa, threads, (int)cfg.micro_batch, steps);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_vlmoe_train: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
