// The decode kernel alone: skinny_matmul over GPT-2-sized weight matrices, f32 and bf16, as GB/s
// of weights streamed beside the memory-read bandwidth measured in the same run.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "gannet/core/dtype.h"
#include "gannet/kernels/gemm.h"
#include "gannet/kernels/memory_bandwidth.h"
#include "gannet/kernels/skinny_matmul.h"

using namespace gannet;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  CLI::App app{"skinny_matmul bandwidth benchmark"};
  int threads = 2, reps = 9;
  int64_t rows = 1;
  app.add_option("--threads,-t", threads)->capture_default_str();
  app.add_option("--rows,-m", rows, "activation rows")->capture_default_str();
  app.add_option("--reps,-r", reps)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  kernels::set_num_threads(threads);
  double bw = kernels::measure_read_bandwidth();
  std::printf("memory read bandwidth %.1f GB/s (%d threads)\n", bw, threads);
  // All of GPT-2 124M's matrices for one token, as 12 layers x 4 + the head, in one big buffer
  // each, so that nothing is cache-resident between passes.
  struct Shape { int64_t N, K; };
  std::vector<Shape> shapes;
  for (int l = 0; l < 12; ++l) shapes.insert(shapes.end(), {{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}});
  shapes.push_back({50257, 768});
  for (bool bf16 : {false, true}) {
    std::vector<std::vector<float>> wf;
    std::vector<std::vector<uint16_t>> wb;
    int64_t bytes = 0;
    for (auto s : shapes) {
      if (bf16) {
        std::vector<float> w(s.N * s.K, 0.01f);
        wb.emplace_back(kernels::packed_bf16_size(s.N, s.K));
        kernels::pack_bf16(w.data(), s.N, s.K, wb.back().data());
        bytes += wb.back().size() * 2;
      } else {
        wf.emplace_back(s.N * s.K, 0.01f);
        bytes += s.N * s.K * 4;
      }
    }
    std::vector<float> x(rows * 3072, 1.f), y(rows * 50257);
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
      auto t0 = Clock::now();
      for (size_t i = 0; i < shapes.size(); ++i) {
        auto s = shapes[i];
        if (bf16) kernels::skinny_matmul_bf16(x.data(), s.K, rows, wb[i].data(), s.N, s.K, nullptr, y.data(), s.N, kernels::Epilogue::store);
        else kernels::skinny_matmul(x.data(), s.K, rows, wf[i].data(), s.N, s.K, nullptr, y.data(), s.N, kernels::Epilogue::store);
      }
      t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    double med = t[t.size() / 2];
    std::printf("%s weights, %ld rows: %.2f ms per token's matrices, %.1f GB/s = %.1f%% of bandwidth\n",
                bf16 ? "bf16" : "f32 ", (long)rows, med * 1e3, bytes / med / 1e9, 100 * bytes / med / 1e9 / bw);
  }
  return 0;
}
