// The decode kernel alone: skinny_matmul over GPT-2-sized weight matrices, f32 and bf16, as GB/s
// of weights streamed beside the memory-read bandwidth measured in the same run.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "gannet/core/dtype.h"
#include "gannet/core/huge_pages.h"
#include "gannet/kernels/gemm.h"
#include "gannet/kernels/memory_bandwidth.h"
#include "gannet/kernels/skinny_matmul.h"
#include "gannet/kernels/blas_core.h"

using namespace gannet;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  gannet::kernels::ensure_blas_core(argv);
  CLI::App app{"skinny_matmul bandwidth benchmark"};
  int threads = 2, reps = 9;
  int64_t rows = 1;
  app.add_option("--threads,-t", threads)->capture_default_str();
  app.add_option("--rows,-m", rows, "activation rows")->capture_default_str();
  app.add_option("--reps,-r", reps)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  kernels::set_num_threads(threads);
  double bw = kernels::measure_read_bandwidth();
  std::printf("memory read bandwidth %.1f GB/s (%d threads; the best probe read kernel's median pass)\n", bw, threads);
  // All of GPT-2 124M's matrices for one token, as 12 layers x 4 + the head, in one big buffer
  // each, so that nothing is cache-resident between passes.
  struct Shape { int64_t N, K; };
  std::vector<Shape> shapes;
  for (int l = 0; l < 12; ++l) shapes.insert(shapes.end(), {{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}});
  shapes.push_back({50257, 768});
  for (kernels::PackedType t : {kernels::PackedType::f32, kernels::PackedType::bf16}) {
    const bool bf16 = t == kernels::PackedType::bf16;
    // One huge-page arena for all matrices, as the engine holds them.
    int64_t elems = 0;
    for (auto s : shapes) elems += (kernels::packed_size(t, s.N, s.K) + 31) / 32 * 32;
    const size_t bytes = elems * (bf16 ? 2 : 4);
    std::shared_ptr<void> owner = allocate_huge_pages(bytes, "the weights");
    char* arena = static_cast<char*>(owner.get());
    std::vector<kernels::PackedMatrix> mats;
    size_t off = 0;
    for (auto s : shapes) {
      std::vector<float> w(s.N * s.K, 0.01f);
      kernels::pack_weights(t, w.data(), s.N, s.K, arena + off);
      mats.push_back({t, arena + off, s.N, s.K});
      off += (kernels::packed_size(t, s.N, s.K) + 31) / 32 * 32 * (bf16 ? 2 : 4);
    }
    std::vector<float> x(rows * 3072, 1.f), y(rows * 50257);
    std::vector<double> times;
    for (int r = 0; r < reps; ++r) {
      auto t0 = Clock::now();
      for (const auto& m : mats)
        kernels::skinny_matmul(x.data(), m.K, rows, m, nullptr, y.data(), m.N, kernels::Epilogue::store);
      times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    std::sort(times.begin(), times.end());
    double med = times[times.size() / 2];
    std::printf("%s weights, %ld rows: %.2f ms per token's matrices, %.1f GB/s = %.1f%% of bandwidth%s\n",
                bf16 ? "bf16" : "f32 ", (long)rows, med * 1e3, bytes / med / 1e9, 100 * bytes / med / 1e9 / bw,
                bytes / med / 1e9 > bw ? " (DEFECT OF THE BOUND: above it)" : "");
  }
  return 0;
}
