// MoE training-throughput benchmark: a dense GPT and the same GPT with an MoE layer in every
// other block (E experts of the dense MLP's size, top-k: with k = 1 the same active FLOPs per
// token), trained side by side on the same batches, steps interleaved (dense, MoE, dense, ...) so
// that both see the same machine. Prints each model's median tokens/s, the MoE/dense ratio (the
// issue's target: at least 0.80), the MoE layers' dropped fraction, and both models' achieved
// GFLOP/s against the fp32 GEMM peak measured in the same run.
//
// Batches are windows of a token file (--data, from `gannet data prepare`) so that routing sees
// real text; --warmup optimizer steps run first so the routers leave their initial imbalance.
// Dropped tokens skip the experts, so with a capacity factor the MoE does less than its nominal
// FLOPs: its GFLOP/s count the FLOPs computed (the expert rows each step's routing kept,
// Gpt::flops_computed), printed beside the dropped fraction, and the tokens/s ratio is printed
// beside the ratio of FLOPs computed per second. --capacity-factor 0 (dropless) compares exactly
// equal work at k = 1.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "gannet/autograd/tape.h"
#include "gannet/data/token_file.h"
#include "gannet/data/window_sampler.h"
#include "gannet/kernels/gemm.h"
#include "gannet/models/gpt.h"
#include "gannet/optim/adamw.h"
#include "gannet/optim/clip.h"
#include "gannet/kernels/blas_core.h"

using namespace gannet;
using Clock = std::chrono::steady_clock;

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

namespace {
struct Trainee {
  models::Gpt model;
  optim::AdamW adamw;
  double dropped = 0;
  int64_t moe_steps = 0;
  std::vector<double> gflops;  // FLOPs computed per second of each step (forward + backward)
  Trainee(const models::GptConfig& c, const optim::AdamWOptions& o) : model(c), adamw(model.parameters(), o) { model.init(1); }
  // One optimizer step; returns its seconds.
  double step(const Tensor& x, const Tensor& y, float lr, uint64_t seed) {
    auto t0 = Clock::now();
    nn::zero_grad(model.parameters());
    nn::MoePass pass;
    pass.training = true;
    pass.seed = seed;
    autograd::Var loss = model.loss(x, y, &pass);
    autograd::tape().backward(loss);
    double norm = optim::global_grad_norm(model.parameters());
    adamw.step(lr, optim::clip_factor(norm, 1.f));
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    for (const auto& l : pass.layers) dropped += l.dropped_fraction / (double)pass.layers.size();
    moe_steps += !pass.layers.empty();
    // Backward: twice the forward's products, over the same rows.
    gflops.push_back(3.0 * model.flops_computed(x.shape()[1], x.numel(), pass) / s / 1e9);
    return s;
  }
};
}  // namespace

int main(int argc, char** argv) {
  gannet::kernels::ensure_blas_core(argv);
  CLI::App app{"gannet MoE training-throughput benchmark (dense vs MoE, interleaved steps)"};
  int64_t layers = 4, dim = 256, heads = 4, seq = 128, batch = 16, vocab = 8192, experts = 8, k = 1;
  double capacity_factor = 1.25;
  int steps = 20, warmup = 30, threads = 2;
  std::string data = "data/brown/train.tok";
  app.add_option("--layers", layers)->capture_default_str();
  app.add_option("--dim", dim)->capture_default_str();
  app.add_option("--heads", heads)->capture_default_str();
  app.add_option("--seq", seq)->capture_default_str();
  app.add_option("--batch", batch)->capture_default_str();
  app.add_option("--experts", experts, "experts per MoE layer (every other block)")->capture_default_str();
  app.add_option("--k", k, "experts per token")->capture_default_str();
  app.add_option("--capacity-factor", capacity_factor, "0: dropless (every token processed: exactly the dense FLOPs at k = 1)")
      ->capture_default_str();
  app.add_option("--data", data, "token file the batches come from")->capture_default_str();
  app.add_option("--warmup", warmup, "untimed steps of each model first")->capture_default_str();
  app.add_option("--steps", steps, "timed steps of each model")->capture_default_str();
  app.add_option("--threads", threads)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    kernels::set_num_threads(threads);
    data::TokenFile file = data::TokenFile::open(data);
    vocab = std::max<int64_t>(vocab, file.vocab_size());
    models::GptConfig dense;
    dense.vocab_size = vocab, dense.n_ctx = seq, dense.n_layer = layers, dense.n_head = heads, dense.n_embd = dim;
    models::GptConfig moe = dense;
    moe.moe.num_experts = {experts};
    moe.moe.k = k;
    moe.moe.capacity_factor = capacity_factor > 0 ? capacity_factor : 1.0;
    moe.moe.drop_tokens = capacity_factor > 0;
    moe.moe.router_z_loss_coeff = 1e-3;
    optim::AdamWOptions o;
    o.lr = 2e-3f;
    Trainee a(dense, o), b(moe, o);
    data::WindowSampler sampler(file, seq, 7);
    Tensor x = Tensor::empty({batch, seq}, DType::i32), y = Tensor::empty({batch, seq}, DType::i32);
    std::vector<double> ta, tb;
    for (int s = 0; s < warmup + steps; ++s) {
      sampler.next(x, y);
      const float lr = o.lr * std::min(1.f, (float)(s + 1) / 20.f);
      double da = a.step(x, y, lr, s), db = b.step(x, y, lr, s);
      if (s >= warmup) ta.push_back(da), tb.push_back(db);
      if (s == warmup - 1) {
        b.dropped = 0, b.moe_steps = 0;
        a.gflops.clear(), b.gflops.clear();
      }
    }
    const double tokens = (double)(batch * seq);
    const double tps_a = tokens / median(ta), tps_b = tokens / median(tb);
    const double peak = kernels::measure_gemm_peak_gflops();
    // Medians over the timed steps of each step's FLOPs computed over its seconds.
    const double gf_a = median(a.gflops), gf_b = median(b.gflops);
    const double nominal_b = 3.0 * b.model.flops_per_token(seq) * tps_b / 1e9;
    std::printf("dense   params %.2fM  tokens/s %.0f  %.1f GFLOP/s (%.0f%% of peak)\n",
                nn::count_elements(a.model.parameters()) / 1e6, tps_a, gf_a, 100 * gf_a / peak);
    std::printf("moe     params %.2fM  tokens/s %.0f  %.1f GFLOP/s computed (%.0f%% of peak), dropped %.1f%% "
                "(nominal FLOPs would give %.1f)  %ld experts top-%ld\n",
                nn::count_elements(b.model.parameters()) / 1e6, tps_b, gf_b, 100 * gf_b / peak,
                100 * b.dropped / std::max<int64_t>(1, b.moe_steps), nominal_b, (long)experts, (long)k);
    std::printf("nominal active FLOPs per token: moe/dense %.3f\n",
                b.model.flops_per_token(seq) / a.model.flops_per_token(seq));
    std::printf("moe / dense tokens/s: %.3f (target >= 0.80); FLOPs computed per second: %.3f; fp32 GEMM peak now\n"
                "%.1f GFLOP/s, %d threads, median of %d steps\n",
                tps_b / tps_a, gf_b / gf_a, peak, threads, steps);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_moe_train: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
