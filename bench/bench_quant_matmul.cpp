// The integer matmul kernels (kernels/quant_matmul.h) at GPT-2 124M's shapes, beside the limits
// measured in the same run:
//   decode (1 row): all of one token's matrices (12 layers x 4 + the LM head) from one huge-page
//     arena, W8A8 / W4A8 / W8A16 / W4A16, as GB/s of packed weights and % of the read-bandwidth
//     bound: a repetition runs the token's matrices once per probe read kernel, each followed by a
//     probe pass over as many bytes with that kernel; the bound is the best kernel's GB/s over the
//     repetition's passes, and a repetition above it is reported as a defect of the bound;
//   prefill (128, 512 rows): W8A8 GOP/s with the activation quantization included, beside oneDNN's
//     u8s8s32 matmul primitive (weights reordered once into its layout, as a serving engine would
//     hold them; the integer product alone) and OpenBLAS's sgemm at the same shapes.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gannet/core/cpu.h"
#include "gannet/core/huge_pages.h"
#include "gannet/core/rng.h"
#include "gannet/kernels/gemm.h"
#include "gannet/kernels/memory_bandwidth.h"
#include "gannet/kernels/onednn_int8_gemm.h"
#include "gannet/kernels/quant_matmul.h"
#include "gannet/kernels/quantize_rows.h"
#include "gannet/kernels/quantize_rows_int4.h"
#include "gannet/kernels/blas_core.h"

using namespace gannet;
namespace k = gannet::kernels;
using Clock = std::chrono::steady_clock;

namespace {
struct Shape {
  int64_t N, K;
};
const Shape kShapes[] = {{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}, {50257, 768}};
// The classifier encoder's block products (configs/teacher_*.json: n_embd 384): c_attn, attn.c_proj,
// c_fc, mlp.c_proj.
const Shape kEncoderShapes[] = {{1152, 384}, {384, 384}, {1536, 384}, {384, 1536}};

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
bool g_best = false;  // --best: the fastest repetition instead of the median (A/B tests on a busy machine)
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
double pick_time(std::vector<double> v) { return g_best ? *std::min_element(v.begin(), v.end()) : median(v); }

// Random quantized values and scales of one shape (the kernels' speed does not depend on them).
struct Source {
  std::vector<int8_t> q, zero;
  std::vector<float> scale;
  k::QuantizedWeights w;
  Source(int bits, Shape s, int64_t group, bool asym) {
    Rng rng(s.N * 7 + s.K);
    q.resize(bits == 8 ? s.N * s.K : s.N * s.K / 2);
    for (auto& v : q) v = (int8_t)rng.next_u64();
    if (bits == 8)
      for (auto& v : q) v = v == -128 ? -127 : v;
    scale.assign(s.N * (s.K / group), 0.01f);
    if (asym) zero.assign(s.N * (s.K / group), 1);
    w = {bits, s.N, s.K, group, q.data(), scale.data(), asym ? zero.data() : nullptr};
  }
};

struct Scheme {
  const char* name;
  int bits;
  int act_bits;  // 8 or 4: integer activations quantized token-wise; 0: f32
};
}  // namespace

int main(int argc, char** argv) {
  gannet::kernels::ensure_blas_core(argv);
  CLI::App app{"integer matmul kernels: decode bandwidth and prefill GOP/s beside oneDNN"};
  int threads = 2, reps = 9;
  int64_t group = 64;
  bool asym = false, skip_decode = false, skip_prefill = false;
  app.add_option("--threads,-t", threads)->capture_default_str();
  app.add_option("--reps,-r", reps)->capture_default_str();
  app.add_option("--group,-g", group, "weight group size (0: per row)")->capture_default_str();
  app.add_flag("--asym", asym, "asymmetric weights (zero points)");
  app.add_flag("--no-decode", skip_decode);
  app.add_flag("--no-prefill", skip_prefill);
  app.add_flag("--best", g_best, "report the fastest repetition instead of the median");
  int64_t only_m = 0;
  app.add_option("--rows,-m", only_m, "prefill rows (default: 128 and 512; 4096 with --encoder)");
  bool encoder = false;
  app.add_flag("--encoder", encoder,
               "prefill at the classifier encoder's shapes (n_embd 384), 32 sequences of 128 tokens by default");
  CLI11_PARSE(app, argc, argv);
  k::set_num_threads(threads);
  std::printf("%d threads, ISA %s%s, weights group %ld%s\n", threads, isa_name(best_isa()),
              cpu_has_avx512_vnni() ? " + VNNI" : "", (long)group, asym ? " asymmetric" : " symmetric");
  auto group_of = [&](Shape s) { return group > 0 ? group : s.K; };

  if (!skip_decode) {
    std::vector<Shape> layer;  // one token's matrices, in the engine's order
    for (int l = 0; l < 12; ++l) layer.insert(layer.end(), {kShapes[0], kShapes[1], kShapes[2], kShapes[3]});
    layer.push_back(kShapes[4]);
    std::vector<float> x(3072), y(50257);
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.001f * (float)(i % 97) - 0.05f;
    std::vector<int8_t> xq(3072);
    std::vector<uint8_t> x4(1536);
    float xs = 0;
    std::printf("\ndecode, 1 row, GPT-2 124M's matrices for one token (12 x 4 + LM head)\n");
    std::printf("%-6s %9s %9s %9s %9s %8s %10s\n", "scheme", "MB/token", "ms", "GB/s", "probe", "% bound", "tok/s*");
    std::vector<std::pair<std::string, double>> token_ms;
    for (Scheme sc :
         {Scheme{"W8A8", 8, 8}, Scheme{"W4A8", 4, 8}, Scheme{"W4A4", 4, 4}, Scheme{"W8A16", 8, 0},
          Scheme{"W4A16", 4, 0}}) {
      std::vector<k::QPackedMatrix> mats;
      int64_t total = 0;
      std::vector<int64_t> offs;
      for (Shape s : layer) {
        offs.push_back(total);
        total += (k::qpacked_bytes(sc.bits, s.N, s.K, group_of(s), asym) + 4095) / 4096 * 4096;
      }
      std::shared_ptr<void> arena = allocate_huge_pages(total, "the packed weights");
      const k::ReadBandwidthProbe probe((size_t)total);  // as many bytes as the token's matrices
      for (size_t i = 0; i < layer.size(); ++i) {
        Source src(sc.bits, layer[i], group_of(layer[i]), asym);
        char* at = static_cast<char*>(arena.get()) + offs[i];
        k::pack_quantized(src.w, at);
        mats.push_back(k::qpacked_view(src.w, at));
      }
      // Time per shape (summed over the layers), to tell small-matrix overheads from streaming.
      std::vector<double> shape_time(5, 0.0);
      std::vector<int64_t> shape_bytes(5, 0);
      auto shape_index = [&](const k::QPackedMatrix& m) {
        for (int i = 0; i < 5; ++i)
          if (kShapes[i].N == m.N && kShapes[i].K == m.K) return i;
        return 0;
      };
      for (size_t i = 0; i < mats.size(); ++i)
        shape_bytes[shape_index(mats[i])] += k::qpacked_bytes(sc.bits, mats[i].N, mats[i].K, group_of(layer[i]), asym);
      auto token = [&] {
        for (const auto& m : mats) {
          auto t0 = Clock::now();
          if (sc.act_bits == 8) {
            k::quantize_rows(x.data(), m.K, 1, m.K, 0.f, xq.data(), m.K, &xs);
            k::quant_matmul({xq.data(), m.K, &xs, 1, m.K}, m, nullptr, y.data(), m.N, k::Epilogue::store);
          } else if (sc.act_bits == 4) {
            k::quantize_rows_int4(x.data(), m.K, 1, m.K, m.K, false, 0.f, x4.data(), m.K / 2, &xs, nullptr);
            const k::QuantizedRows a{reinterpret_cast<const int8_t*>(x4.data()), m.K / 2, &xs, 1, m.K, 4, nullptr};
            k::quant_matmul(a, m, nullptr, y.data(), m.N, k::Epilogue::store);
          } else {
            k::quant_matmul_f32(x.data(), m.K, 1, m, nullptr, y.data(), m.N, k::Epilogue::store);
          }
          shape_time[shape_index(m)] += seconds_since(t0);
        }
      };
      token();
      std::fill(shape_time.begin(), shape_time.end(), 0.0);
      std::vector<double> times, bounds, ratios, over;
      for (int r = 0; r < reps; ++r) {
        k::BandwidthTally tally;
        double t = 0;
        for (int i = 0; i < k::kReadKernelCount; ++i) {
          auto t0 = Clock::now();
          token();
          t += seconds_since(t0);
          probe.pass_into(tally, i);
        }
        t /= k::kReadKernelCount;
        const double bound = tally.best_gbps();
        times.push_back(t);
        bounds.push_back(bound);
        ratios.push_back(total / t / 1e9 / bound);
        if (ratios.back() > 1) over.push_back(ratios.back());
      }
      const double t = pick_time(times);
      token_ms.push_back({sc.name, t * 1e3});
      std::printf("%-6s %9.1f %9.3f %9.1f %9.1f %7.1f%% %10.1f   by shape GB/s:", sc.name, total / 1e6, t * 1e3,
                  total / t / 1e9, median(bounds), 100 * median(ratios), 1 / t);
      for (int i = 0; i < 5; ++i)
        std::printf(" %.1f", shape_bytes[i] / (shape_time[i] / (reps * k::kReadKernelCount)) / 1e9);
      std::printf("\n");
      if (!over.empty()) {
        std::printf("       DEFECT OF THE BOUND: %zu repetition(s) above it (", over.size());
        for (size_t i = 0; i < over.size(); ++i) std::printf("%s%.1f%%", i ? ", " : "", 100 * over[i]);
        std::printf("): the bound is too low, not the figure high\n");
      }
    }
    std::printf(
        "(* tok/s of the matrices alone; probe: GB/s of the best read kernel over passes of the token's\n"
        "   bytes between the token's runs; %% bound: median over repetitions of GB/s / probe; by shape:\n"
        "   mean GB/s of 2304x768, 768x768, 3072x768, 768x3072 (12 each) and the 50257x768 head)\n");
    std::printf("one-row speed over W8A8's (its ms / theirs):");
    for (const auto& [name, ms] : token_ms) std::printf(" %s %.2fx", name.c_str(), token_ms[0].second / ms);
    std::printf("\n");
  }

  if (!skip_prefill) {
    std::printf("\nprefill%s, W8A8 (quantize_rows + quant_matmul) vs oneDNN's u8s8s32 matmul (weights reordered\n"
                "once; the integer product only) vs sgemm; W4A4: quantize_rows_int4 + quant_matmul\n",
                encoder ? " at the encoder's shapes" : "");
    {
      const std::vector<int8_t> B8(kShapes[0].N * kShapes[0].K, 1);
      const k::OnednnInt8Matmul peer(only_m > 0 ? only_m : 128, kShapes[0].N, kShapes[0].K, B8.data());
      std::printf("oneDNN's implementation: %s; %s\n", peer.implementation().c_str(),
                  k::OnednnInt8Matmul::exact_at_full_range()
                      ? "exact over the whole u8 x s8 range"
                      : "NOT exact over the u8 x s8 range on this CPU (no VNNI: pairs saturate in int16; exact\n"
                        "for |weights| <= 64 only): a cheaper product than W8A8's exact one");
    }
    std::printf("%5s %6s %5s %10s %10s %7s %10s %10s %9s %9s %10s %9s %9s\n", "M", "N", "K", "W8A8 GOP/s", "oneDNN",
                "ratio", "W4A8", "W8A16", "sgemm GF", "W8A8/f32", "W4A4 GOP/s", "W4A4/W8A8", "W4A4/DNN");
    const std::vector<Shape> shapes = encoder ? std::vector<Shape>(std::begin(kEncoderShapes), std::end(kEncoderShapes))
                                              : std::vector<Shape>(std::begin(kShapes), std::end(kShapes));
    const std::vector<int64_t> rows = only_m > 0 ? std::vector<int64_t>{only_m}
                                      : encoder  ? std::vector<int64_t>{32 * 128}
                                                 : std::vector<int64_t>{128, 512};
    for (int64_t M : rows) {
      for (Shape s : shapes) {
        const double ops = 2.0 * M * s.N * s.K;
        std::vector<float> X(M * s.K), Y(M * s.N);
        for (size_t i = 0; i < X.size(); ++i) X[i] = 0.01f * (float)((i * 7919) % 201) - 1.f;
        std::vector<int8_t> q(M * s.K);
        std::vector<uint8_t> q4(M * s.K / 2);
        std::vector<float> sa(M);
        // The contenders, each run once per repetition, so that the machine's drift (other
        // tenants) hits all of them alike; the ratio is the median of the per-repetition ratios.
        std::vector<std::function<void()>> fns;
        std::vector<std::shared_ptr<void>> keep;
        k::QPackedMatrix W4{};  // the int4 weights, for W4A4 too
        for (int bits : {8, 4}) {
          auto src = std::make_shared<Source>(bits, s, group_of(s), asym);
          std::shared_ptr<void> buf = allocate_huge_pages(k::qpacked_bytes(src->w), "packed weights");
          k::pack_quantized(src->w, buf.get());
          const k::QPackedMatrix W = k::qpacked_view(src->w, buf.get());
          keep.insert(keep.end(), {src, buf});
          if (bits == 4) W4 = W;
          fns.push_back([&, W] {  // W8A8 / W4A8, activation quantization included
            k::quantize_rows(X.data(), s.K, M, s.K, 0.f, q.data(), s.K, sa.data());
            k::quant_matmul({q.data(), s.K, sa.data(), M, s.K}, W, nullptr, Y.data(), s.N, k::Epilogue::store);
          });
          if (bits == 8)  // W8A16
            fns.push_back(
                [&, W] { k::quant_matmul_f32(X.data(), s.K, M, W, nullptr, Y.data(), s.N, k::Epilogue::store); });
        }
        // oneDNN: C[M, N] = A[M, K] (u8) * B^T (B [N, K], s8), int32 out; B reordered once here.
        std::vector<uint8_t> A8(M * s.K, 3);
        std::vector<int8_t> B8(s.N * s.K, 1);
        std::vector<int32_t> C32(M * s.N);
        auto peer = std::make_shared<k::OnednnInt8Matmul>(M, s.N, s.K, B8.data());
        keep.push_back(peer);
        fns.push_back([&, peer] { peer->run(A8.data(), C32.data()); });
        std::vector<float> Wf(s.N * s.K, 0.01f);
        fns.push_back(
            [&] { k::gemm(false, true, M, s.N, s.K, 1.f, X.data(), s.K, Wf.data(), s.K, 0.f, Y.data(), s.N); });
        {  // W4A4: int4 weights (as W4A8's), activations quantized token-wise to int4
          fns.push_back([&, W4] {
            k::quantize_rows_int4(X.data(), s.K, M, s.K, s.K, false, 0.f, q4.data(), s.K / 2, sa.data(), nullptr);
            const k::QuantizedRows a{reinterpret_cast<const int8_t*>(q4.data()), s.K / 2, sa.data(), M, s.K, 4, nullptr};
            k::quant_matmul(a, W4, nullptr, Y.data(), s.N, k::Epilogue::store);
          });
        }
        std::vector<std::vector<double>> t(fns.size());
        std::vector<double> ratio, ratio_f32, ratio_44, ratio_44_dnn;
        for (auto& fn : fns) fn();  // warm-up
        std::mt19937 shuffler(12345);
        for (int r = 0; r < reps; ++r) {
          // Each repetition runs the contenders in another random order, so that none always follows
          // the same one: what ran before (sgemm's f32 data in the caches) slows a product down. (A
          // rotation of one order kept each contender behind the same one: with the same kernels,
          // W4A4 / W8A8 measured 0.91-1.06x in the rotation and 0.96-1.02x shuffled, Intel Xeon.)
          std::vector<size_t> order(fns.size());
          std::iota(order.begin(), order.end(), size_t{0});
          std::shuffle(order.begin(), order.end(), shuffler);
          for (size_t i : order) {
            auto t0 = Clock::now();
            fns[i]();
            t[i].push_back(seconds_since(t0));
          }
          ratio.push_back(t[3][r] / t[0][r]);
          ratio_f32.push_back(t[4][r] / t[0][r]);
          ratio_44.push_back(t[0][r] / t[5][r]);
          ratio_44_dnn.push_back(t[3][r] / t[5][r]);
        }
        auto gops = [&](int i) { return ops / pick_time(t[i]) / 1e9; };
        std::printf("%5ld %6ld %5ld %10.1f %10.1f %6.1f%% %10.1f %10.1f %9.1f %8.2fx %10.1f %8.2fx %8.1f%%\n", (long)M,
                    (long)s.N, (long)s.K, gops(0), gops(3), 100 * median(ratio), gops(2), gops(1), gops(4),
                    median(ratio_f32), gops(5), median(ratio_44), 100 * median(ratio_44_dnn));
      }
    }
    std::printf(
        "(GOP/s = 2 M N K / time, median of repetitions; ratio: median over repetitions of W8A8 / oneDNN's\n"
        " matmul, W4A4 / W8A8 (speed) and W4A4 / oneDNN's matmul likewise, each repetition running every\n"
        " contender once, in a random order each time)\n");
  }
  return 0;
}
