// The classifier encoder's inference (infer/encoder_engine.h) in its weight forms: f32, W8A8
// (ZeroQuant int8 g64, int8 token-wise inputs), W4A4 (int4 g64, int4 token-wise inputs), binary and ternary (XTC W1A8 / W2A8, per-row
// scales, embeddings low-bit too), 2:4 and 1:4 (NxMiFormer: N:M sparse int8 g64 kept values by
// magnitude, int8 token-wise inputs, f32 embeddings), at the teacher's shape (6 layers, d 384, 6 heads, vocab 8192,
// n_ctx 128, 15 classes) and its 3-layer student, on full windows of 128 tokens at batch 1 and 32.
// Random weights (the speed does not depend on them). Per form: the median ms per batch over the
// repetitions, sequences/s, the bytes of weights one forward reads (block products, biases,
// LayerNorms, classifier; embedding rows are read per token and left out), and the ratios to f32
// (time: f32 / form, above 1 = faster; bytes: form / f32), and the speed ratio to W8A8 in the
// same run.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <map>

#include "gannet/compress/low_bit_encoder_pack.h"
#include "gannet/compress/nm_encoder_pack.h"
#include "gannet/compress/nm_mask.h"
#include "gannet/compress/simulated_quant.h"
#include "gannet/core/format_number.h"
#include "gannet/core/rng.h"
#include "gannet/infer/encoder_engine.h"
#include "gannet/kernels/blas_core.h"
#include "gannet/kernels/gemm.h"

using namespace gannet;
using Clock = std::chrono::steady_clock;

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Form {
  std::string name;
  infer::EncoderEngine engine;
};

// The forms named in `names` (f32 always: the ratios' base).
std::vector<Form> forms_of(const models::Encoder& m, int64_t group, const std::vector<std::string>& names) {
  auto wanted = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  std::vector<Form> forms;
  forms.push_back({"f32", infer::EncoderEngine::f32(m)});
  if (wanted("W8A8")) forms.push_back({"W8A8", infer::EncoderEngine::quantized(m)});
  if (wanted("W4A4"))  // int4 g64 weights, int4 token-wise inputs (the INT4 paper's encoder form)
    forms.push_back({"W4A4", infer::EncoderEngine::quantized(m, {4, 64}, io::ActivationQuant{true, 0.f, 4, false})});
  // The same with ZeroQuant's fused input quantization (the LayerNorms and c_fc's GELU quantize).
  if (wanted("W8A8-fused")) {
    forms.push_back({"W8A8-fused", infer::EncoderEngine::quantized(m)});
    forms.back().engine.set_fused_input_quantization(true);
  }
  if (wanted("W4A4-fused")) {
    forms.push_back(
        {"W4A4-fused", infer::EncoderEngine::quantized(m, {4, 64}, io::ActivationQuant{true, 0.f, 4, false})});
    forms.back().engine.set_fused_input_quantization(true);
  }
  if (wanted("binary"))
    forms.push_back({"binary", infer::EncoderEngine::low_bit(compress::pack_low_bit_encoder(m, {1, group}, {1, 0}, "w1a8"))});
  if (wanted("ternary"))
    forms.push_back({"ternary", infer::EncoderEngine::low_bit(compress::pack_low_bit_encoder(m, {2, group}, {2, 0}, "w2a8"))});
  for (const char* n : {"2:4", "1:4"}) {
    if (!wanted(n)) continue;
    const NmPattern pattern = NmPattern::parse(n, "form");
    std::vector<std::array<compress::NmProductForm, 4>> all((size_t)m.config().n_layer);
    std::map<std::string, Tensor> masks;
    for (int64_t l = 0; l < m.config().n_layer; ++l)
      for (int p = 0; p < 4; ++p) {
        all[(size_t)l][(size_t)p].pattern = pattern;
        all[(size_t)l][(size_t)p].quant = {8, 64};
        const std::string product = "h." + std::to_string(l) + "." + compress::kBlockProducts[(size_t)p];
        for (const nn::Parameter& par : m.parameters())
          if (par.name == product + ".weight") {
            const Tensor& w = par.var.value();
            const std::vector<uint8_t> keep = compress::nm_mask(w.f32(), w.dim(0), w.dim(1), pattern);
            Tensor mask = Tensor::empty(w.shape());
            for (int64_t i = 0; i < w.numel(); ++i) mask.f32()[i] = keep[(size_t)i];
            masks.emplace(product, mask);
          }
      }
    forms.push_back({n, infer::EncoderEngine::nm_sparse(compress::pack_nm_sparse_encoder(m, all, masks))});
  }
  return forms;
}

// Full windows of T random tokens.
void random_batch(int64_t B, int64_t T, int64_t vocab, Tensor& tokens, Tensor& mask) {
  Rng rng((uint64_t)(B * 1000 + T));
  tokens = Tensor::empty({B, T}, DType::i32);
  mask = Tensor::empty({B, T}, DType::u8);
  for (int64_t i = 0; i < B * T; ++i) {
    tokens.data<int32_t>()[i] = (int32_t)rng.below((uint64_t)vocab);
    mask.data<uint8_t>()[i] = 1;
  }
}
}  // namespace

int main(int argc, char** argv) {
  gannet::kernels::ensure_blas_core(argv);
  CLI::App app{"classifier encoder inference: f32, W8A8, W4A4, binary, ternary and N:M sparse int8 weights"};
  int threads = 2, reps = 5;
  int64_t T = 128, group = 0;
  std::vector<int64_t> batches = {1, 32}, layer_counts = {6, 3};
  std::vector<std::string> form_names = {"W8A8", "W4A4", "binary", "ternary", "2:4", "1:4"};
  app.add_option("--threads,-t", threads)->capture_default_str();
  app.add_option("--reps,-r", reps, "timed repetitions per case (after one warm-up)")->capture_default_str();
  app.add_option("--tokens", T, "tokens per sequence (at most 128)")->capture_default_str();
  app.add_option("--batches", batches, "batch sizes")->capture_default_str();
  app.add_option("--layers", layer_counts, "models by layer count (d 384, 6 heads)")->capture_default_str();
  app.add_option("--forms", form_names,
                 "forms beside f32: W8A8, W4A4, binary, ternary, 2:4, 1:4; W8A8-fused, W4A4-fused (the LayerNorms and "
                 "GELU quantizing the next product's input)")
      ->capture_default_str()
      ->check(CLI::IsMember({"W8A8", "W4A4", "binary", "ternary", "2:4", "1:4", "W8A8-fused", "W4A4-fused"}));
  app.add_option("--group,-g", group, "low-bit products' group (0: one scale per row)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  kernels::set_num_threads(threads);
  std::printf("encoder inference, %d threads, %ld tokens per sequence, median of %d\n", threads, (long)T, reps);
  std::printf("%-8s %-8s %5s %11s %10s %14s %9s %9s %10s\n", "model", "form", "batch", "ms/batch", "seq/s",
              "weight bytes", "speed/f32", "bytes/f32", "speed/W8A8");
  for (const int64_t L : layer_counts) {
    models::EncoderConfig c;
    c.vocab_size = 8192;
    c.n_ctx = 128;
    c.n_layer = L;
    c.n_head = 6;
    c.n_embd = 384;
    c.num_classes = 15;
    models::Encoder model(c);
    model.init(1);
    std::vector<Form> forms = forms_of(model, group, form_names);
    for (const int64_t B : batches) {
      Tensor tokens, mask;
      random_batch(B, T, c.vocab_size, tokens, mask);
      double f32_ms = 0, w8a8_ms = 0;
      const int64_t f32_bytes = forms.front().engine.weight_bytes();
      for (Form& f : forms) {
        f.engine.logits(tokens, mask);  // warm-up: buffers sized, weights touched
        std::vector<double> ms;
        for (int r = 0; r < reps; ++r) {
          const auto t0 = Clock::now();
          f.engine.logits(tokens, mask);
          ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        }
        const double t = median(ms);
        if (f.name == "f32") f32_ms = t;
        if (f.name == "W8A8") w8a8_ms = t;
        std::printf("%-8s %-8s %5ld %11.2f %10.1f %14ld %9.2f %9.3f %10s\n", (std::to_string(L) + "L").c_str(),
                    f.name.c_str(), (long)B, t, 1000.0 * (double)B / t, (long)f.engine.weight_bytes(), f32_ms / t,
                    (double)f.engine.weight_bytes() / (double)f32_bytes,
                    w8a8_ms > 0 ? str(format_number("%.2f", w8a8_ms / t)).c_str() : "-");
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
