// The compressed products beside ZeroQuant's W8A8 and f32: XTC's binary and ternary
// (kernels/low_bit_matmul.h) and NxMiFormer's N:M sparse int8, 2:4 and 1:4
// (kernels/nm_sparse_matmul.h, group 64 as W8A8):
//   decode (1 row): GPT-2 124M's matrices (12 layers x c_attn, attn c_proj, c_fc, mlp c_proj) run in
//     order as one decode step does, from an arena of several copies of the 12 layers (at least
//     kArenaBytes, beyond the L3 cache; each step takes the next copy), so that the weights come
//     from DRAM: time per step, bytes read (planes + scales; kept values + positions + scales), GB/s,
//     speed against W8A8;
//   batched (128 and 4096 rows): the encoder's shapes (d 384), GOP/s (of the dense product: 2MNK)
//     and time, the activations' quantization included for the int8 products.
// Times are medians of repetitions; each repetition runs every contender once in turn, so that a
// shared machine's drift hits them alike.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gannet/core/cpu.h"
#include "gannet/core/huge_pages.h"
#include "gannet/core/rng.h"
#include "gannet/kernels/blas_core.h"
#include "gannet/kernels/gemm.h"
#include "gannet/kernels/low_bit_matmul.h"
#include "gannet/kernels/nm_sparse_matmul.h"
#include "gannet/kernels/quant_matmul.h"
#include "gannet/kernels/quantize_rows.h"

using namespace gannet;
namespace k = gannet::kernels;
using Clock = std::chrono::steady_clock;

namespace {
struct Shape {
  int64_t N, K;
};
const Shape kGpt2[] = {{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}};
const Shape kEncoder[] = {{1152, 384}, {384, 384}, {1536, 384}, {384, 1536}};
int64_t kArenaBytes = int64_t(128) << 20;  // 4x the 32 MiB L3 of the machine measured (--arena-mib)

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
bool g_best = false;  // --best: the fastest repetition instead of the median (a busy machine)
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
double pick_time(const std::vector<double>& v) { return g_best ? *std::min_element(v.begin(), v.end()) : median(v); }
int64_t round_page(int64_t b) { return (b + 4095) / 4096 * 4096; }

// A format's matrices: storage bytes of one shape, and a matrix of that shape written at `at`
// (random planes or int8 values; the kernels' speed does not depend on them) plus its product.
struct Format {
  const char* name;
  int bits;    // 1, 2 (low-bit, per-row scales) or 8 (W8A8 or N:M sparse, group 64)
  int n = 0;   // N:M sparse: n of every 4 kept (0: dense)
};
constexpr int64_t kW8Group = 64;

k::NmSparseWeights nm_shape(const Format& f, Shape s) {
  k::NmSparseWeights w;
  w.n = f.n;
  w.m = 4;
  w.bits = 8;
  w.N = s.N;
  w.K = s.K;
  w.group = kW8Group;
  return w;
}

int64_t matrix_bytes(const Format& f, Shape s) {
  if (f.n > 0) return k::nm_sparse_packed_bytes(nm_shape(f, s));
  if (f.bits == 8) return k::qpacked_bytes(8, s.N, s.K, kW8Group, false);
  const int64_t padded = (s.K + 31) / 32 * 32;
  return f.bits * s.N * padded / 8 + s.N * 4;
}

// One matrix in an arena, ready to multiply.
struct Matrix {
  Shape s;
  k::LowBitWeights low;
  k::QPackedMatrix q8;
  k::NmSparsePacked nm;
  k::NmSparseWeights nm_plain;
  int kind = 0;  // 0 low-bit, 1 W8A8, 2 N:M
};

// The plain N:M matrices the packed ones come from (random kept values and positions), one per
// format and shape, kept for the product's shape checks.
struct PlainNm {
  std::vector<int8_t> values;
  std::vector<uint8_t> index;
  std::vector<float> scale;
  k::NmSparseWeights w;
};
const k::NmSparseWeights& plain_nm(const Format& f, Shape s, Rng& rng) {
  static std::vector<std::unique_ptr<PlainNm>> store;
  for (const auto& p : store)
    if (p->w.n == f.n && p->w.N == s.N && p->w.K == s.K) return p->w;
  auto p = std::make_unique<PlainNm>();
  p->w = nm_shape(f, s);
  p->values.resize((size_t)(s.N * p->w.value_row_bytes()));
  for (auto& v : p->values) v = (int8_t)(rng.below(255) - 127);
  // Positions 0 (n = 1) or 0 and 2 (n = 2): any increasing ones cost the same.
  p->index.assign((size_t)(s.N * p->w.index_row_bytes()), f.n == 2 ? 0x88 : 0x00);
  p->scale.assign((size_t)(s.N * s.K / kW8Group), 0.01f);
  p->w.values = p->values.data();
  p->w.index = p->index.data();
  p->w.scale = p->scale.data();
  store.push_back(std::move(p));
  return store.back()->w;
}

Matrix write_matrix(const Format& f, Shape s, char* at, Rng& rng) {
  Matrix m{s, {}, {}, {}, {}, f.bits != 8 ? 0 : f.n > 0 ? 2 : 1};
  if (f.n > 0) {
    m.nm_plain = plain_nm(f, s, rng);
    m.nm = k::pack_nm_sparse(m.nm_plain, at);
    return m;
  }
  if (f.bits == 8) {
    std::vector<int8_t> q(s.N * s.K);
    for (auto& v : q) v = (int8_t)(rng.below(255) - 127);
    std::vector<float> scale(s.N * (s.K / kW8Group), 0.01f);
    const k::QuantizedWeights w{8, s.N, s.K, kW8Group, q.data(), scale.data(), nullptr};
    k::pack_quantized(w, at);
    m.q8 = k::qpacked_view(w, at);
    return m;
  }
  const int64_t padded = (s.K + 31) / 32 * 32, plane = s.N * padded / 8;
  uint8_t* sign = reinterpret_cast<uint8_t*>(at);
  uint8_t* nonzero = f.bits == 2 ? sign + plane : nullptr;
  float* scale = reinterpret_cast<float*>(sign + f.bits * plane);
  for (int64_t i = 0; i < plane; ++i) sign[i] = (uint8_t)rng.next_u64();
  if (nonzero)
    for (int64_t i = 0; i < plane; ++i) sign[i] &= nonzero[i] = (uint8_t)rng.next_u64();
  for (int64_t n = 0; n < s.N; ++n) scale[n] = 0.01f;
  m.low = {f.bits, s.N, s.K, padded, padded, sign, nonzero, scale};
  return m;
}

void multiply(const Matrix& m, const k::QuantizedRows& a, float* y) {
  if (m.kind == 0)
    k::low_bit_matmul(a, m.low, y, m.s.N);
  else if (m.kind == 1)
    k::quant_matmul(a, m.q8, nullptr, y, m.s.N, k::Epilogue::store);
  else
    k::nm_sparse_matmul(a, m.nm, m.nm_plain, nullptr, y, m.s.N);
}

const Format kFormats[] = {{"binary", 1}, {"ternary", 2}, {"W8A8", 8}, {"2:4 int8", 8, 2}, {"1:4 int8", 8, 1}};
constexpr size_t kW8A8 = 2;  // the reference format's index

// One format's decode arena: copies of the 12 layers' matrices, at least kArenaBytes in all.
struct DecodeArena {
  std::shared_ptr<void> memory;
  std::vector<Matrix> mats;  // copy c's matrices at [48 c, 48 c + 48)
  int64_t copies = 0, bytes_per_step = 0;
  explicit DecodeArena(const Format& f) {
    int64_t step = 0;
    for (int l = 0; l < 12; ++l)
      for (Shape s : kGpt2) {
        step += round_page(matrix_bytes(f, s));
        bytes_per_step += matrix_bytes(f, s);
      }
    copies = (kArenaBytes + step - 1) / step;
    memory = allocate_huge_pages((size_t)(copies * step), "the weights");
    Rng rng(7);
    char* at = static_cast<char*>(memory.get());
    for (int64_t c = 0; c < copies; ++c)
      for (int l = 0; l < 12; ++l)
        for (Shape s : kGpt2) {
          mats.push_back(write_matrix(f, s, at, rng));
          at += round_page(matrix_bytes(f, s));
        }
  }
};

void decode(int reps) {
  std::printf("\ndecode, 1 row: GPT-2 124M's 12 x (c_attn 768->2304, attn c_proj 768->768, c_fc 768->3072,\n"
              "mlp c_proj 3072->768) per step, weights from an arena of >= %ld MiB (copies of the 12 layers)\n",
              (long)(kArenaBytes >> 20));
  std::printf("%-8s %6s %10s %9s %8s %10s\n", "format", "copies", "MB/step", "ms/step", "GB/s", "vs W8A8");
  std::vector<float> x(3072), y(3072);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.001f * (float)(i % 97) - 0.05f;
  std::vector<int8_t> xq(3072);
  float xs = 0;
  std::vector<std::unique_ptr<DecodeArena>> arenas;
  for (const Format& f : kFormats) arenas.push_back(std::make_unique<DecodeArena>(f));
  auto run_step = [&](const DecodeArena& a, int64_t c) {
    for (int i = 0; i < 48; ++i) {
      const Matrix& m = a.mats[(c % a.copies) * 48 + i];
      k::quantize_rows(x.data(), m.s.K, 1, m.s.K, 0.f, xq.data(), m.s.K, &xs);
      multiply(m, {xq.data(), m.s.K, &xs, 1, m.s.K}, y.data());
    }
  };
  for (const auto& a : arenas)
    for (int64_t c = 0; c < a->copies; ++c) run_step(*a, c);  // warm-up: one pass over each arena
  // Each repetition: one step of every format in turn, each from its next copy.
  std::vector<std::vector<double>> t(arenas.size());
  for (int r = 0; r < reps * 8; ++r)
    for (size_t f = 0; f < arenas.size(); ++f) {
      const auto t0 = Clock::now();
      run_step(*arenas[f], r);
      t[f].push_back(seconds_since(t0));
    }
  for (size_t f = 0; f < arenas.size(); ++f) {
    const double step_time = pick_time(t[f]);
    std::vector<double> ratio;  // per repetition, the formats having run back to back
    for (size_t r = 0; r < t[f].size(); ++r) ratio.push_back(t[kW8A8][r] / t[f][r]);
    const double speedup = g_best ? pick_time(t[kW8A8]) / step_time : median(ratio);
    const DecodeArena& a = *arenas[f];
    std::printf("%-8s %6ld %10.2f %9.3f %8.1f %9.2fx\n", kFormats[f].name, (long)a.copies, a.bytes_per_step / 1e6,
                step_time * 1e3, a.bytes_per_step / step_time / 1e9, speedup);
  }
  std::printf("(vs W8A8: median over repetitions of W8A8's time per step / this format's (--best: of the\n"
              " fastest steps); targets: binary and ternary >= 2x, 2:4 >= 1.4x.\n"
              " W8A8 and N:M: group %ld; low-bit: per-row scales. Activation quantization included.\n"
              " MB/step: what the 48 matrices' products read: planes + scales, W8A8's packed bytes, N:M's\n"
              " packed bytes (kept values, 2-bit positions, scales and a correction per scale).)\n",
              (long)kW8Group);
}

void batched(int reps) {
  std::printf("\nbatched: the encoder's shapes (d 384), GOP/s (2 M N K / time) and ms, activation\n"
              "quantization included for the int8 products; f32: kernels::gemm (OpenBLAS sgemm)\n");
  std::printf("%5s %6s %5s ", "M", "N", "K");
  for (const Format& f : kFormats) std::printf(" %16s", f.name);
  std::printf(" %16s\n", "f32");
  for (int64_t M : {128, 4096}) {
    for (Shape s : kEncoder) {
      std::vector<float> X(M * s.K), Y(M * s.N), Wf(s.N * s.K, 0.01f);
      for (size_t i = 0; i < X.size(); ++i) X[i] = 0.01f * (float)((i * 7919) % 201) - 1.f;
      std::vector<int8_t> q(M * s.K);
      std::vector<float> sa(M);
      std::vector<std::shared_ptr<void>> keep;
      std::vector<std::function<void()>> fns;
      Rng rng(11);
      for (const Format& f : kFormats) {
        std::shared_ptr<void> buf = allocate_huge_pages((size_t)round_page(matrix_bytes(f, s)), "the weights");
        keep.push_back(buf);
        const Matrix m = write_matrix(f, s, static_cast<char*>(buf.get()), rng);
        fns.push_back([&, m] {
          k::quantize_rows(X.data(), s.K, M, s.K, 0.f, q.data(), s.K, sa.data());
          multiply(m, {q.data(), s.K, sa.data(), M, s.K}, Y.data());
        });
      }
      fns.push_back([&] { k::gemm(false, true, M, s.N, s.K, 1.f, X.data(), s.K, Wf.data(), s.K, 0.f, Y.data(), s.N); });
      std::vector<std::vector<double>> t(fns.size());
      for (auto& fn : fns) fn();  // warm-up
      const int r_count = M >= 4096 ? std::max(5, reps / 2) : reps * 5;
      for (int r = 0; r < r_count; ++r)
        for (size_t i = 0; i < fns.size(); ++i) {
          const auto t0 = Clock::now();
          fns[i]();
          t[i].push_back(seconds_since(t0));
        }
      std::printf("%5ld %6ld %5ld ", (long)M, (long)s.N, (long)s.K);
      for (auto& ti : t) {
        const double sec = pick_time(ti);
        std::printf(" %7.1f %6.2fms", 2.0 * M * s.N * s.K / sec / 1e9, sec * 1e3);
      }
      std::printf("\n");
    }
  }
}
}  // namespace

int main(int argc, char** argv) {
  gannet::kernels::ensure_blas_core(argv);
  CLI::App app{"The compressed products (binary, ternary, N:M sparse) beside W8A8 and f32: decode and batched"};
  int threads = 2, reps = 9;
  bool skip_decode = false, skip_batched = false;
  app.add_option("--threads,-t", threads)->capture_default_str();
  app.add_option("--reps,-r", reps)->capture_default_str();
  app.add_flag("--no-decode", skip_decode);
  int64_t arena_mib = kArenaBytes >> 20;
  app.add_option("--arena-mib", arena_mib, "decode: least size of the weight arena (small: weights from cache)")
      ->capture_default_str();
  app.add_flag("--no-batched", skip_batched);
  app.add_flag("--best", g_best, "report the fastest repetition instead of the median");
  CLI11_PARSE(app, argc, argv);
  k::set_num_threads(threads);
  kArenaBytes = arena_mib << 20;
  const bool vector512 = best_isa() == Isa::avx512 && cpu_has_avx512_vnni() && cpu_has_avx512_vbmi_gfni();
  std::printf("%d threads, ISA %s; the low-bit products run %s code, the N:M ones %s; %s of repetitions\n",
              threads, isa_name(best_isa()), vector512 ? "AVX-512 VNNI" : "AVX2",
              vector512 ? "AVX-512 VNNI" : "the scalar reference (no AVX-512 VNNI + VBMI)",
              g_best ? "fastest" : "median");
  if (!skip_decode) decode(reps);
  if (!skip_batched) batched(reps);
  return 0;
}
