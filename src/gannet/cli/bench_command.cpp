#include "gannet/cli/bench_command.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include "gannet/cli/offload_options.h"
#include "gannet/cli/tensor_parallel_option.h"
#include "gannet/dist/communicator.h"
#include "gannet/core/rng.h"
#include "gannet/infer/engine.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/kernels/blas_core.h"
#include "gannet/kernels/gemm.h"
#include "gannet/kernels/memory_bandwidth.h"
#include "gannet/kernels/onednn_int8_gemm.h"

namespace gannet::cli {

namespace {
using Clock = std::chrono::steady_clock;
// Decode steps between two interleaved bandwidth probe passes. Every step: with a pass every 8
// steps the probe covered a tenth of a repetition's seconds and single repetitions read 90-113%.
constexpr int64_t kProbeEvery = 1;

struct BenchArgs {
  std::vector<std::string> models;
  std::vector<std::string> weights = {"f32"};
  std::vector<int64_t> prompts = {128, 512};
  int64_t gen = 128;
  std::vector<int64_t> batches = {1};
  int reps = 5;
  int threads = 0;
  OffloadArgs offload;
  TensorParallelArgs tensor_parallel;
};

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = (int32_t)rng.below(vocab);
  return t;
}

// Seconds to process a prompt of n tokens into an empty sequence.
double time_prompt(infer::Engine& e, int64_t n, uint64_t seed) {
  std::vector<int32_t> toks = random_tokens(n, e.vocab_size(), seed);
  std::vector<float> logits(e.vocab_size());
  e.reset(0);
  infer::Chunk c{0, toks};
  auto t0 = Clock::now();
  e.forward(std::span<const infer::Chunk>(&c, 1), logits.data());
  return seconds_since(t0);
}

// n decode steps of B sequences, each started with one token. With a probe, one pass of it runs
// after every kProbeEvery steps, timed apart, the probe's read kernels taken in turn: the bandwidth
// the machine gave in the same seconds as the steps, slice by slice (these shared machines'
// bandwidth moves within a second, so passes taken only before and after a repetition can miss
// what the repetition saw).
struct GenerationTiming {
  double seconds = 0;               // the decode steps alone
  kernels::BandwidthTally probe;    // the probe passes alone
  infer::Engine::StreamStats first, last;  // streaming: the stream's counters around the steps
};
GenerationTiming time_generation(infer::Engine& e, int64_t n, int64_t B, uint64_t seed,
                                 const kernels::ReadBandwidthProbe* probe = nullptr) {
  const int64_t V = e.vocab_size();
  std::vector<int32_t> toks = random_tokens((n + 1) * B, V, seed);
  std::vector<float> logits(B * V);
  std::vector<infer::Chunk> chunks(B);
  for (int64_t b = 0; b < B; ++b) {
    e.reset(b);
    chunks[b] = {b, std::span<const int32_t>(toks).subspan(b, 1)};
  }
  e.forward(chunks, logits.data());
  GenerationTiming t;
  t.first = e.stream_stats();
  int64_t passes = 0;
  auto t0 = Clock::now();
  for (int64_t i = 1; i <= n; ++i) {
    for (int64_t b = 0; b < B; ++b) chunks[b].tokens = std::span<const int32_t>(toks).subspan(i * B + b, 1);
    e.forward(chunks, logits.data());
    if (probe && (i % kProbeEvery == 0 || i == n)) {
      t.seconds += seconds_since(t0);
      probe->pass_into(t.probe, passes++);
      t0 = Clock::now();
    }
  }
  t.seconds += seconds_since(t0);
  t.last = e.stream_stats();
  return t;
}

// A test's figure and its bound, each repetition timed right after the bound was measured again:
// the bandwidth of these shared machines drifts by tens of percent within minutes.
struct Measured {
  double tokens_per_s = 0, bound = 0, fraction = 0;  // medians over repetitions
  std::vector<double> over;                          // repetitions above their bound: their fractions
};

template <class Rep>
Measured measure(int reps, Rep rep) {
  std::vector<double> tps, bound, frac;
  Measured m;
  for (int r = 0; r < reps; ++r) {
    auto [t, b] = rep(r);
    tps.push_back(t);
    bound.push_back(b);
    frac.push_back(t / b);
    if (t > b) m.over.push_back(t / b);
  }
  m.tokens_per_s = median(tps), m.bound = median(bound), m.fraction = median(frac);
  return m;
}

// A repetition faster than its bound means the bound is wrong (too low), not that the code beat
// the machine: said as such beside the figure.
void report_bound_defect(const Measured& m) {
  if (m.over.empty()) return;
  std::printf("           DEFECT OF THE BOUND: %zu repetition(s) above it (", m.over.size());
  for (size_t i = 0; i < m.over.size(); ++i) std::printf("%s%.1f%%", i ? ", " : "", 100 * m.over[i]);
  std::printf("): the bound is too low, not the figure high\n");
}

std::string tg_name(int64_t gen, int64_t B) { return "tg" + std::to_string(gen) + (B > 1 ? "x" + std::to_string(B) : ""); }

// The disk's side of a streamed repetition's bound: the best rate seen (direct-I/O probes of a
// step's bytes of the streamed file before and after, and the stream's own reads during), and the
// bytes the repetition needed at least: every unit of each of its passes but those the ring held
// when it began; with MoE blocks also the experts routed to: at least what was read, less what the
// ring may hold of later passes.
struct DiskShare {
  double probe_gbps = 0, stream_gbps = 0, best_gbps = 0, needed_bytes = 0;
  // Tokens/s the disk allows for `tokens` tokens.
  double tokens_per_s(double tokens) const { return best_gbps * 1e9 * tokens / needed_bytes; }
};
DiskShare disk_share(const infer::Engine::StreamStats& first, const infer::Engine::StreamStats& last,
                     double probe_before, double probe_after, int64_t passes) {
  DiskShare d;
  const double reading = last.read_seconds - first.read_seconds, read = (double)(last.bytes_read - first.bytes_read);
  const double ahead = (double)first.slots * first.slot_bytes;
  d.probe_gbps = std::max(probe_before, probe_after);
  d.stream_gbps = reading > 0 ? read / reading / 1e9 : 0;
  d.best_gbps = std::max(d.probe_gbps, d.stream_gbps);
  d.needed_bytes = std::max((double)passes * first.bytes_per_pass - ahead, read - ahead);
  return d;
}

// A prompt with the weights streamed from disk: tokens/s beside min(compute bound, what the disk
// allows, as disk_share says). Returns the median tokens/s.
double streamed_prompt(infer::Engine& e, const BenchArgs& a, const std::string& label, int64_t p, double flops,
                       bool int8_gemm) {
  time_prompt(e, p, 1);  // warm-up
  const int64_t bytes = e.stream_stats().bytes_per_pass;
  std::vector<double> rates;
  Measured m = measure(a.reps, [&](int r) {
    const double peak = int8_gemm ? kernels::measure_onednn_int8_gops(1536, 3) : kernels::measure_gemm_gflops(1536, 3);
    const double compute = peak * 1e9 / (flops / p);
    const double before = bytes > 0 ? e.measure_disk_read_gbps(bytes) : 0;
    const infer::Engine::StreamStats first = e.stream_stats();
    const double seconds = time_prompt(e, p, 2 + r);
    const infer::Engine::StreamStats last = e.stream_stats();
    const double after = bytes > 0 ? e.measure_disk_read_gbps(bytes) : 0;
    const DiskShare d = disk_share(first, last, before, after, (p + 511) / 512);
    rates.push_back(d.best_gbps);
    return std::pair<double, double>(p / seconds, bytes > 0 ? std::min(compute, d.tokens_per_s(p)) : compute);
  });
  std::printf("%-10s %-9s %12.1f %12.1f %8.1f%%   %.2f GFLOP/token; %.1f MB per pass from disk at %.2f GB/s\n",
              (label + "/disk").c_str(), ("pp" + std::to_string(p)).c_str(), m.tokens_per_s, m.bound,
              100 * m.fraction, flops / p / 1e9, bytes / 1e6, median(rates));
  report_bound_defect(m);
  std::fflush(stdout);
  return m.tokens_per_s;
}

// Generation with the weights streamed from disk: tokens/s beside the bound
// min(compute bound, disk bandwidth x B / bytes per step), the disk's share as disk_share says
// (the best of three rates, since this virtual disk's rate moves by tens of percent from one
// second to the next), the compute bound from the GEMM rate measured before. Returns the median
// tokens/s.
double streamed_generation(infer::Engine& e, const BenchArgs& a, const std::string& label, int64_t B) {
  time_generation(e, 1, B, 1);  // warm-up: the first pass fills the ring
  const infer::Engine::StreamStats s = e.stream_stats();
  double flops = 0;  // per token, averaged over the positions of the test
  for (int64_t i = 1; i <= a.gen; ++i) flops += e.flops_per_token(i, true) / a.gen;
  std::vector<double> disk, probes, during;
  double seconds = 0, read_s = 0, wait_s = 0;  // over the repetitions: steps, reading, waiting for a read
  Measured m = measure(a.reps, [&](int r) {
    const double compute = kernels::measure_gemm_gflops(1536, 3) * 1e9 / flops;
    const double before = s.bytes_per_pass > 0 ? e.measure_disk_read_gbps(s.bytes_per_pass) : 0;
    const GenerationTiming t = time_generation(e, a.gen, B, 2 + r);
    const double after = s.bytes_per_pass > 0 ? e.measure_disk_read_gbps(s.bytes_per_pass) : 0;
    const DiskShare d = disk_share(t.first, t.last, before, after, a.gen);
    seconds += t.seconds;
    read_s += t.last.read_seconds - t.first.read_seconds;
    wait_s += t.last.wait_seconds - t.first.wait_seconds;
    probes.push_back(d.probe_gbps);
    during.push_back(d.stream_gbps);
    disk.push_back(d.best_gbps);
    const double io = s.bytes_per_pass > 0 ? d.tokens_per_s((double)a.gen * B) : compute;
    return std::pair<double, double>(a.gen * B / t.seconds, std::min(compute, io));
  });
  std::printf("%-10s %-9s %12.1f %12.1f %8.1f%%   %.1f MB per step from disk at %.2f GB/s (direct I/O), ring %ld x "
              "%.1f MB\n",
              (label + "/disk").c_str(), tg_name(a.gen, B).c_str(), m.tokens_per_s, m.bound, 100 * m.fraction, s.bytes_per_pass / 1e6,
              disk.empty() ? 0.0 : median(disk), (long)s.slots, s.slot_bytes / 1e6);
  std::printf("           disk GB/s: probes %.2f, the stream's reads %.2f (medians); the reader was busy %.0f%% of the "
              "steps' time, the steps waited for it %.0f%%\n",
              median(probes), median(during), 100 * read_s / seconds, 100 * wait_s / seconds);
  report_bound_defect(m);
  std::fflush(stdout);
  return m.tokens_per_s;
}

// Whether any product of the model quantizes its inputs to int8 (its prompts run on integer GEMMs).
bool has_int8_activations(const io::GptWeights& w) {
  for (const auto& [name, a] : w.activations)
    if (a.quantized) return true;
  return false;
}

void run(const BenchArgs& a) {
  if (a.threads > 0) kernels::set_num_threads(a.threads);
  GANNET_CHECK(!a.models.empty(), "bench: no model given");
  dist::Communicator* group = tensor_parallel_group(a.tensor_parallel);
  std::vector<io::GptWeights> models;
  for (const std::string& path : a.models) models.push_back(io::read_gpt_weights(path));
  int64_t need_ctx = a.gen + 1;
  for (int64_t p : a.prompts) need_ctx = std::max(need_ctx, p);
  int64_t max_batch = *std::max_element(a.batches.begin(), a.batches.end());
  for (size_t i = 0; i < models.size(); ++i) {
    const models::GptConfig& c = models[i].config;
    GANNET_CHECK(need_ctx <= c.n_ctx, "bench: a test needs ", need_ctx, " tokens of context, ", a.models[i], " has ",
                 c.n_ctx);
    std::printf("model %s: %ld layers, d %ld, %ld heads, vocabulary %ld, context %ld%s%s\n", a.models[i].c_str(),
                (long)c.n_layer, (long)c.n_embd, (long)c.n_head, (long)c.vocab_size, (long)c.n_ctx,
                models[i].is_quantized() ? "; quantized " : "", models[i].scheme.c_str());
  }
  std::printf("%d threads, OpenBLAS %s kernels. Bounds, measured in every repetition: memory read\n"
              "bandwidth (a probe pass over a buffer of the step's weight bytes after every %ld decode step(s),\n"
              "timed apart from them, the probe's read kernels (plain, prefetching, 4 streams per thread,\n"
              "non-temporal) in turn: the best kernel's bytes over its seconds in the repetition) and GEMM\n"
              "rate (n = 1536, median of 3 before: OpenBLAS fp32, or for models with int8 activations\n"
              "oneDNN's u8s8s32 matmul primitive with its weights reordered once); figures are medians of %d\n"
              "repetitions; a repetition above its bound is reported as a defect of the bound\n\n",
              kernels::num_threads(), kernels::blas_core_name(), (long)kProbeEvery, a.reps);
  if (group)
    std::printf("tensor-parallel over %d processes (this one's rank 0): the figures are the group's\n\n", group->size());
  if (std::any_of(models.begin(), models.end(), has_int8_activations)) {
    const bool exact = kernels::OnednnInt8Matmul::exact_at_full_range();
    std::printf("oneDNN's int8 product on this CPU is %s\n\n",
                exact ? "exact over the whole u8 x s8 range"
                      : "NOT exact over the u8 x s8 range (no VNNI: pairs saturate in int16), a cheaper product\n"
                        "than the engine's exact one: the int8 bound is higher than an exact product's");
  }
  std::printf("%-10s %-9s %12s %12s %9s   %s\n", "weights", "test", "tokens/s", "bound", "of bound", "bound from");
  std::fflush(stdout);
  // 1 GiB passes (each kernel) before and after each in-memory generation repetition; made when
  // first needed (a streamed bench keeps its memory to the weights' budget).
  std::unique_ptr<kernels::ReadBandwidthProbe> around;

  struct Result {
    std::string label, test;
    double tokens_per_s, fraction, bytes;
  };
  std::vector<Result> results;
  for (size_t mi = 0; mi < models.size(); ++mi) {
    const io::GptWeights& w = models[mi];
    const bool int8_gemm = has_int8_activations(w);
    for (const std::string& name : a.weights) {
      infer::EngineOptions o;
      o.weights = infer::parse_weight_format(name);
      o.max_sequences = max_batch;
      o.max_context = need_ctx;
      apply_offload(a.offload, a.models[mi], o);
      o.tensor_parallel = group;
      o.expert_parallel = a.tensor_parallel.expert_parallel;
      infer::Engine e(w, o);
      // A quantized model is labelled by its scheme (the format applies to its float leftovers).
      const std::string label = w.is_quantized() ? (name == "f32" ? w.scheme : w.scheme + "+" + name) : name;
      for (int64_t p : a.prompts) {
        double flops = e.flops_per_token(0, true) - e.flops_per_token(0, false);  // the head, once
        for (int64_t i = 0; i < p; ++i) flops += e.flops_per_token(i, false);
        if (o.offload_disk) {
          results.push_back({label, "pp" + std::to_string(p), streamed_prompt(e, a, label, p, flops, int8_gemm), 0, 0});
          continue;
        }
        time_prompt(e, p, 1);  // warm-up
        Measured m = measure(a.reps, [&](int r) {
          const double peak = int8_gemm ? kernels::measure_onednn_int8_gops(1536, 3) : kernels::measure_gemm_gflops(1536, 3);
          return std::pair<double, double>(p / time_prompt(e, p, 2 + r), peak * 1e9 / (flops / p));
        });
        const std::string test = "pp" + std::to_string(p);
        std::printf("%-10s %-9s %12.1f %12.1f %8.1f%%   %.2f GFLOP/token at %.0f G%s/s\n", label.c_str(), test.c_str(),
                    m.tokens_per_s, m.bound, 100 * m.fraction, flops / p / 1e9, m.bound * (flops / p) / 1e9,
                    int8_gemm ? "OP (int8)" : "FLOP");
        report_bound_defect(m);
        std::fflush(stdout);
        results.push_back({label, test, m.tokens_per_s, m.fraction, 0});
      }
      for (int64_t B : a.batches) {
        if (o.offload_disk) {
          results.push_back({label, tg_name(a.gen, B), streamed_generation(e, a, label, B), 0, 0});
          continue;
        }
        time_generation(e, std::min<int64_t>(a.gen, 16), B, 1);  // warm-up
        const double bytes = (double)e.weight_bytes_per_step();
        // The interleaved probe reads as many bytes as a step: from wherever the step's weights
        // come from (memory, or a cache that holds them).
        const kernels::ReadBandwidthProbe probe(std::max<size_t>((size_t)bytes, 4096));
        std::vector<double> best_around;
        std::vector<int> best_kernel(kernels::kReadKernelCount, 0);
        Measured m = measure(a.reps, [&](int r) {
          if (!around) around = std::make_unique<kernels::ReadBandwidthProbe>();
          const double before = around->measure_best(1);
          const GenerationTiming t = time_generation(e, a.gen, B, 2 + r, &probe);
          best_around.push_back(std::max(before, around->measure_best(1)));
          ++best_kernel[(size_t)t.probe.best_kernel()];
          return std::pair<double, double>(a.gen * B / t.seconds, B * t.probe.best_gbps() * 1e9 / bytes);
        });
        std::string test = tg_name(a.gen, B);
        const int top = (int)(std::max_element(best_kernel.begin(), best_kernel.end()) - best_kernel.begin());
        std::printf("%-10s %-9s %12.1f %12.1f %8.1f%%   %.1f MB of weights per step at %.1f GB/s (best kernel %s; "
                    "best 1 GiB pass around: %.1f)\n",
                    label.c_str(), test.c_str(), m.tokens_per_s, m.bound, 100 * m.fraction, bytes / 1e6,
                    m.bound / B * bytes / 1e9, kernels::read_kernel_name(kernels::kReadKernels[(size_t)top]),
                    median(best_around));
        report_bound_defect(m);
        std::fflush(stdout);
        results.push_back({label, test, m.tokens_per_s, m.fraction, bytes});
      }
    }
  }
  // Each test against the first entry's. For generation the plain ratio moves with the machine's
  // bandwidth between the two tests; the second figure compares each one's share of the bound
  // measured beside it, times the bytes ratio.
  const std::string first = results.empty() ? "" : results.front().label;
  bool header = false;
  for (const Result& r : results) {
    if (r.label == first) continue;
    auto base = std::find_if(results.begin(), results.end(),
                             [&](const Result& b) { return b.label == first && b.test == r.test; });
    if (base == results.end()) continue;
    if (!header) std::printf("\n");
    header = true;
    if (r.bytes > 0)
      std::printf("%s %s / %s: %.2fx (at equal bandwidth: %.2fx)\n", r.test.c_str(), r.label.c_str(), first.c_str(),
                  r.tokens_per_s / base->tokens_per_s, r.fraction / base->fraction * base->bytes / r.bytes);
    else
      std::printf("%s %s / %s: %.2fx\n", r.test.c_str(), r.label.c_str(), first.c_str(),
                  r.tokens_per_s / base->tokens_per_s);
  }
}
}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Prompt and generation speed of the inference engine beside the machine's bounds");
  cmd->add_option("--model,-m", a->models,
                  "gannet model/checkpoint (.safetensors, float or quantized) or HF GPT-2 directory; several "
                  "(comma-separated) are compared with the first")
      ->required()
      ->delimiter(',');
  cmd->add_option("--weights,-w", a->weights,
                  "weight formats to test: f32, bf16 (comma-separated; for a quantized model, the format of "
                  "its unquantized matrices)")
      ->delimiter(',')->capture_default_str()->check(CLI::IsMember({"f32", "bf16"}));
  cmd->add_option("--prompt,-p", a->prompts, "prompt lengths (comma-separated; ppN tests)")
      ->delimiter(',')->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--gen,-n", a->gen, "tokens to generate (tgN test)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--batch,-b", a->batches, "sequences decoded together in the generation test (comma-separated)")
      ->delimiter(',')->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_option("--reps,-r", a->reps, "repetitions; the median is reported")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--threads,-t", a->threads, "threads (0 = all cores)")->capture_default_str()->check(CLI::NonNegativeNumber);
  add_offload_options(cmd, a->offload);
  add_tensor_parallel_option(cmd, a->tensor_parallel);
  cmd->callback([a]() { run(*a); });
}

}  // namespace gannet::cli
