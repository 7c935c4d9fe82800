// Training-speed benchmark: GPT steps (forward, backward, AdamW) on random tokens, with the same
// flags as ../shared/bench/torch_gpt_train.py. Prints tokens/s (median step), achieved GFLOP/s,
// and its percentage of the fp32 GEMM peak measured in the same run; with --peer, runs the
// PyTorch script right after and prints the ratio.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "gannet/autograd/tape.h"
#include "gannet/core/allocator.h"
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

int main(int argc, char** argv) {
  gannet::kernels::ensure_blas_core(argv);
  CLI::App app{"gannet training benchmark (GPT, fp32, AdamW)"};
  int64_t layers = 6, dim = 384, heads = 6, seq = 256, batch = 8, vocab = 8192;
  int steps = 10, threads = 2;
  std::string peer;
  app.add_option("--layers", layers)->capture_default_str();
  app.add_option("--dim", dim)->capture_default_str();
  app.add_option("--heads", heads)->capture_default_str();
  app.add_option("--seq", seq)->capture_default_str();
  app.add_option("--batch", batch)->capture_default_str();
  app.add_option("--vocab", vocab)->capture_default_str();
  app.add_option("--steps", steps, "timed steps (the first 2 are warm-up)")->capture_default_str();
  app.add_option("--threads", threads)->capture_default_str();
  app.add_option("--peer", peer, "path of torch_gpt_train.py to run with the same flags afterwards");
  CLI11_PARSE(app, argc, argv);
  if (steps < 3) steps = 3;
  try {
    kernels::set_num_threads(threads);
    models::GptConfig cfg;
    cfg.vocab_size = vocab;
    cfg.n_ctx = seq;
    cfg.n_layer = layers;
    cfg.n_head = heads;
    cfg.n_embd = dim;
    models::Gpt model(cfg);
    model.init(0);
    optim::AdamWOptions o;
    o.lr = 3e-4f;
    optim::AdamW adamw(model.parameters(), o);
    Rng rng(0);
    Tensor x = Tensor::empty({batch, seq}, DType::i32), y = Tensor::empty({batch, seq}, DType::i32);
    for (int64_t i = 0; i < batch * seq; ++i) {
      x.data<int32_t>()[i] = (int32_t)rng.below(vocab);
      y.data<int32_t>()[i] = (int32_t)rng.below(vocab);
    }
    std::vector<double> times;
    float loss_value = 0;
    for (int s = 0; s < steps; ++s) {
      auto t0 = Clock::now();
      nn::zero_grad(model.parameters());
      autograd::Var loss = model.loss(x, y);
      autograd::tape().backward(loss);
      double norm = optim::global_grad_norm(model.parameters());
      adamw.step(o.lr, optim::clip_factor(norm, 1.f));
      loss_value = loss.value().f32()[0];
      times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    times.erase(times.begin(), times.begin() + 2);
    double med = median(times);
    double tps = (double)(batch * seq) / med;
    double gflops = 3.0 * model.flops_per_token(seq) * tps / 1e9;  // forward + backward = 3x forward
    double peak = kernels::measure_gemm_peak_gflops();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    std::printf("gannet params %ld tokens/s %.0f step_ms %.0f peak_rss_mib %.0f loss %.3f\n",
                (long)nn::count_elements(model.parameters()), tps, med * 1e3, ru.ru_maxrss / 1024.0, loss_value);
    std::printf("achieved %.1f GFLOP/s = %.1f%% of the fp32 GEMM peak measured now (%.1f GFLOP/s, %d threads)\n",
                gflops, 100.0 * gflops / peak, peak, threads);
    if (!peer.empty()) {
      std::string cmd = "/usr/bin/python3 " + peer + " --layers " + std::to_string(layers) + " --dim " +
                        std::to_string(dim) + " --heads " + std::to_string(heads) + " --seq " + std::to_string(seq) +
                        " --batch " + std::to_string(batch) + " --vocab " + std::to_string(vocab) + " --steps " +
                        std::to_string(steps) + " --threads " + std::to_string(threads);
      FILE* p = popen(cmd.c_str(), "r");
      if (!p) {
        std::fprintf(stderr, "cannot run %s\n", cmd.c_str());
        return 1;
      }
      char line[512];
      std::string out;
      while (std::fgets(line, sizeof line, p)) out += line;
      int rc = pclose(p);
      std::printf("%s", out.c_str());
      double peer_tps = 0, peer_rss = 0;
      auto pos = out.find("tokens/s ");
      if (rc == 0 && pos != std::string::npos) peer_tps = std::stod(out.substr(pos + 9));
      pos = out.find("peak_rss_mib ");
      if (rc == 0 && pos != std::string::npos) peer_rss = std::stod(out.substr(pos + 13));
      if (peer_tps > 0)
        std::printf("gannet / pytorch: %.2fx tokens/s, %.2fx peak memory\n", tps / peer_tps,
                    (ru.ru_maxrss / 1024.0) / peer_rss);
      else
        std::printf("peer did not run (exit %d)\n", rc);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
