#include "gannet/infer/engine.h"

#include <omp.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "gannet/core/dtype.h"
#include "gannet/core/error.h"
#include "gannet/core/huge_pages.h"
#include "gannet/core/parallel_errors.h"
#include "gannet/infer/fused_input_quantization.h"
#include "gannet/infer/kv_cache.h"
#include "gannet/infer/linear_weight.h"
#include "gannet/kernels/bias.h"
#include "gannet/kernels/cached_attention.h"
#include "gannet/kernels/layernorm.h"
#include "gannet/kernels/moe_dispatch.h"
#include "gannet/kernels/moe_routing.h"
#include "gannet/kernels/skinny_matmul.h"
#include "gannet/kernels/softmax.h"
#include "gannet/kernels/token_gather.h"

namespace gannet::infer {

const char* weight_format_name(WeightFormat f) { return f == WeightFormat::bf16 ? "bf16" : "f32"; }

WeightFormat parse_weight_format(const std::string& name) {
  if (name == "f32") return WeightFormat::f32;
  if (name == "bf16") return WeightFormat::bf16;
  fail(str("unknown weight format '", name, "' (f32, bf16)"));
}

namespace {

// Rows of one pass at most: a long prompt is processed in pieces of this many tokens.
constexpr int64_t kMaxPieceRows = 512;

// The prepared weights live in one block of huge pages (core/huge_pages.h).
class Arena {
 public:
  explicit Arena(size_t bytes) : owner_(allocate_huge_pages(bytes, "the weights")), size_(bytes) {}
  Tensor take(const Shape& shape, DType dtype) {
    size_t bytes = (dtype_bytes(dtype, shape_numel(shape)) + 63) / 64 * 64;
    GANNET_CHECK(used_ + bytes <= size_, "engine: weight arena overflow");
    Tensor t = Tensor::wrap(static_cast<char*>(owner_.get()) + used_, shape, dtype, owner_);
    used_ += bytes;
    return t;
  }

 private:
  std::shared_ptr<void> owner_;
  size_t size_ = 0, used_ = 0;
};

size_t padded_bytes(DType t, int64_t n) { return (dtype_bytes(t, n) + 63) / 64 * 64; }

// A weight's values as f32, in a vector the preparation may change.
std::vector<float> to_f32(const Tensor& t) {
  Tensor f = as_f32(t);
  return std::vector<float>(f.f32(), f.f32() + f.numel());
}

struct Layer {
  // fc, out: the dense MLP; absent in an MoE block without use_residual. Float: ln_1 folded into
  // qkv, ln_2 into fc (except in an MoE block, see below).
  LinearWeight qkv, proj, fc, out;
  Tensor ln1_g, ln1_b, ln2_g, ln2_b;  // what remains of the LayerNorms at run time (ones/zeros when folded)
  // An MoE block (experts > 0) keeps ln_2 unfolded: its output feeds the router, every expert and
  // (use_residual) the dense MLP and the mixing coefficient.
  int64_t experts = 0;
  bool residual = false;                         // PR-MoE: softmax(coef)[0] * moe + softmax(coef)[1] * mlp
  LinearWeight gate;                             // router [E, C], f32 whatever the format, no bias
  std::vector<LinearWeight> expert_fc, expert_out;  // per expert: [4C, C] (GELU), [C, 4C]
  LinearWeight coef;                             // use_residual: [2, C]
  bool has_mlp() const { return experts == 0 || residual; }
};

// Whether block l's c_fc quantizes its GELU output for c_proj (both take int8 inputs).
bool fuses_gelu_quantization(const Layer& l) {
  return l.experts == 0 && takes_fused_inputs(l.fc) && takes_fused_inputs(l.out);
}

// One row of a pass: a token at a position of a sequence.
struct Row {
  int64_t seq, pos;
  int32_t token;
};

}  // namespace

struct Engine::Impl {
  models::GptConfig cfg;
  EngineOptions opt;
  int64_t C = 0, H = 0, D = 0, ctx = 0;
  DType wtype = DType::f32;
  LinearWeight embed;     // wte [V, C]: the token embedding's rows (and the tied LM head)
  LinearWeight head;      // the LM head: embed, or lm_head.weight when quantized apart
  Tensor wpe;             // [ctx, C] f32
  Tensor lnf_g, lnf_b;    // [C] f32
  std::vector<Layer> layers;
  KvCache cache;
  // Work buffers, sized for the largest pass.
  int64_t max_rows = 0;
  std::vector<float> x, xn, qkv, att, hid, scratch, attn_scores;
  QuantizedInputs xq;  // a LayerNorm's output quantized for an int8- or int4-input product
  QuantizedInputs hq;  // c_fc's GELU output quantized by c_fc for c_proj
  // MoE blocks' buffers (empty in a dense model): router logits and probabilities [rows, E], the
  // gate of each slot [rows * k], the slots' inputs and outputs [rows * k, C], the combined expert
  // output [rows, C]; for PR-MoE the dense MLP's output [rows, C] and the mixing weights [rows, 2].
  std::vector<float> router_logits, router_probs, slot_gates, moe_in, moe_out, moe_y, dense, mix_logits, mix;
  kernels::MoeRouting routing;
  // The MoE half of block L on rows [0, n) of xn (its ln_2 output): X += the block's MoE output.
  void moe_forward(const Layer& L, int64_t n);
  // LayerNorm then the product that reads it; an int8-input quantized product gets its input
  // quantized by the LayerNorm itself (kernels/layernorm_quantize.h).
  void norm_then(const LinearWeight& w, const Tensor& gamma, const Tensor& beta, int64_t n, float* y, int64_t ldy,
                 kernels::Epilogue e);
  // Rows [0, n) of x through LayerNorm, quantized for w's int8 or int4 inputs into xq, as
  // ZeroQuant's fused LayerNorm does.
  kernels::QuantizedRows norm_quantized(const LinearWeight& w, const Tensor& gamma, const Tensor& beta, int64_t n) {
    return layernorm_quantized(w, x.data(), n, C, gamma.f32(), beta.f32(), cfg.layernorm_eps, xq);
  }
  // The dense MLP of block L on rows [0, n): X += c_proj(gelu(c_fc(ln_2(X)))). With int8 inputs to
  // both products, c_fc quantizes its GELU output for c_proj itself (ZeroQuant's fusion).
  void mlp(const Layer& L, int64_t n);

  Impl(const io::GptWeights& w, const EngineOptions& o);
  void check_chunks(std::span<const Chunk> chunks);
  std::vector<char> seen;  // check_chunks' scratch
  // Runs rows through the model, appending to the cache; writes the logits of rows
  // out_rows[i] to logits + i * V.
  void pass(const std::vector<Row>& rows, const std::vector<int64_t>& out_rows, float* logits);
  void prepare_scratch(int64_t M);
  // Appends one chunk (in pieces of at most kMaxPieceRows rows); writes the logits of its last
  // token, or of all its tokens.
  void run_chunk(const Chunk& c, bool all_logits, float* logits);
  std::vector<float> logit_rows;  // decode logits before they go to their chunk's place
  std::vector<int64_t> decode_chunks, step_outs;
  std::vector<Row> step_rows;
};

namespace {
int64_t context_of(const io::GptWeights& w, const EngineOptions& o) {
  GANNET_CHECK(o.max_sequences >= 1, "engine: max_sequences must be >= 1, got ", o.max_sequences);
  GANNET_CHECK(o.max_context >= 0, "engine: max_context must be >= 0, got ", o.max_context);
  GANNET_CHECK(o.max_context <= w.config.n_ctx, "engine: context ", o.max_context,
               " is longer than the model's n_ctx ", w.config.n_ctx);
  return o.max_context > 0 ? o.max_context : w.config.n_ctx;
}
}  // namespace

Engine::Impl::Impl(const io::GptWeights& w, const EngineOptions& o)
    : cfg(w.config),
      opt(o),
      C(w.config.n_embd),
      H(w.config.n_head),
      D(w.config.n_embd / w.config.n_head),
      ctx(context_of(w, o)),
      wtype(o.weights == WeightFormat::bf16 ? DType::bf16 : DType::f32),
      cache(w.config.n_layer, o.max_sequences, w.config.n_head, w.config.n_embd / w.config.n_head, ctx) {
  cfg.validate();
  const int64_t V = cfg.vocab_size, L = cfg.n_layer;
  if (cfg.moe.enabled()) {
    GANNET_CHECK(cfg.moe.router == "top_k", "engine: MoE routing '", cfg.moe.router,
                 "' is not causal (each expert picks among all tokens of a batch, so a token's output would depend "
                 "on later tokens and on other sequences); the engine runs top_k routing only");
  }
  // One arena for everything the kernels stream. Float matrices take the engine's format; a
  // quantized model's quantized matrices keep theirs (packed for kernels/quant_matmul.h).
  const kernels::PackedType ptype = wtype == DType::f32 ? kernels::PackedType::f32 : kernels::PackedType::bf16;
  auto matrix_bytes = [&](const std::string& name, int64_t out, int64_t in) -> size_t {
    if (const io::QuantizedTensor* q = w.find_quantized(name, {out, in}))
      return padded_bytes(DType::u8, kernels::qpacked_bytes(q->view()));
    return padded_bytes(wtype, kernels::packed_size(ptype, out, in));
  };
  // One expert's matrix [out, in] of an expert tensor [E, out, in]; a quantized expert tensor is one
  // [E * out, in] matrix, and expert e packs its rows [e * out, (e + 1) * out) on their own.
  auto expert_bytes = [&](const std::string& name, int64_t E, int64_t out, int64_t in) -> size_t {
    if (const io::QuantizedTensor* q = w.find_quantized(name, {E * out, in}))
      return padded_bytes(DType::u8, kernels::qpacked_bytes(q->row_slice(0, out).view()));
    return padded_bytes(wtype, kernels::packed_size(ptype, out, in));
  };
  const bool separate_head = w.quantized.count("lm_head.weight") != 0;
  size_t bytes = matrix_bytes("wte.weight", V, C) + padded_bytes(DType::f32, ctx * C) + 2 * padded_bytes(DType::f32, C);
  if (separate_head) bytes += matrix_bytes("lm_head.weight", V, C);
  for (int64_t l = 0; l < L; ++l) {
    const std::string h = "h." + std::to_string(l);
    const int64_t E = cfg.moe.experts_at(l, L);
    bytes += matrix_bytes(h + ".attn.c_attn.weight", 3 * C, C) + matrix_bytes(h + ".attn.c_proj.weight", C, C) +
             padded_bytes(DType::f32, 3 * C) + 6 * padded_bytes(DType::f32, C);
    if (E == 0 || cfg.moe.use_residual)
      bytes += matrix_bytes(h + ".mlp.c_fc.weight", 4 * C, C) + matrix_bytes(h + ".mlp.c_proj.weight", C, 4 * C) +
               padded_bytes(DType::f32, 4 * C) + padded_bytes(DType::f32, C);
    if (E > 0) {
      bytes += padded_bytes(DType::f32, kernels::packed_size(kernels::PackedType::f32, E, C)) +
               E * (expert_bytes(h + ".moe.experts.c_fc.weight", E, 4 * C, C) +
                    expert_bytes(h + ".moe.experts.c_proj.weight", E, C, 4 * C) + padded_bytes(DType::f32, 4 * C) +
                    padded_bytes(DType::f32, C));
      if (cfg.moe.use_residual)
        bytes += padded_bytes(wtype, kernels::packed_size(ptype, 2, C)) + padded_bytes(DType::f32, 2);
    }
  }
  Arena arena(bytes);

  auto vector = [&](const std::string& name, int64_t n) {
    std::vector<float> v = to_f32(w.at(name, {n}));
    Tensor t = arena.take({n}, DType::f32);
    std::memcpy(t.raw(), v.data(), n * sizeof(float));
    return t;
  };
  auto constant = [&](int64_t n, float value) {
    Tensor t = arena.take({n}, DType::f32);
    std::fill(t.f32(), t.f32() + n, value);
    return t;
  };
  // A quantized matrix, packed for the integer kernels.
  auto quantized = [&](const std::string& name, const io::QuantizedTensor& q, Tensor bias) {
    Tensor t = arena.take({kernels::qpacked_bytes(q.view())}, DType::u8);
    kernels::pack_quantized(q.view(), t.raw());
    return LinearWeight(t, q, std::move(bias), w.activation(name));
  };
  // A float matrix packed for the decode kernel, in the engine's format or in f32.
  auto matrix_as = [&](kernels::PackedType pt, const float* values, int64_t out, int64_t in, Tensor bias) {
    const DType dt = pt == kernels::PackedType::f32 ? DType::f32 : DType::bf16;
    Tensor t = arena.take({kernels::packed_size(pt, out, in)}, dt);
    kernels::pack_weights(pt, values, out, in, t.raw());
    return LinearWeight(t, out, in, std::move(bias));
  };
  auto matrix = [&](const std::vector<float>& values, int64_t out, int64_t in, Tensor bias) {
    return matrix_as(ptype, values.data(), out, in, std::move(bias));
  };
  if (const io::QuantizedTensor* q = w.find_quantized("wte.weight", {V, C})) embed = quantized("wte.weight", *q, Tensor());
  else embed = matrix(to_f32(w.at("wte.weight", {V, C})), V, C, Tensor());
  head = embed;
  if (separate_head) head = quantized("lm_head.weight", *w.find_quantized("lm_head.weight", {V, C}), Tensor());
  {
    std::vector<float> v = to_f32(w.at("wpe.weight", {cfg.n_ctx, C}));
    wpe = arena.take({ctx, C}, DType::f32);
    std::memcpy(wpe.raw(), v.data(), ctx * C * sizeof(float));
  }
  lnf_g = vector("ln_f.weight", C);
  lnf_b = vector("ln_f.bias", C);

  // A LayerNorm's scale and shift folded into the float Linear that follows it:
  //   W' = W diag(gamma),  b' = b + W beta,
  // so that at run time only the normalization itself remains. A quantized Linear keeps its
  // integers as quantized, so its LayerNorm applies gamma and beta itself (and its output is what
  // the int8 activation quantization sees, as in ZeroQuant).
  auto normed = [&](const std::string& p, const std::string& ln, int64_t out, Tensor& gamma, Tensor& beta) {
    const std::string name = p + ".weight";
    if (const io::QuantizedTensor* q = w.find_quantized(name, {out, C})) {
      gamma = vector(ln + ".weight", C);
      beta = vector(ln + ".bias", C);
      return quantized(name, *q, vector(p + ".bias", out));
    }
    gamma = constant(C, 1.f);
    beta = constant(C, 0.f);
    std::vector<float> W = to_f32(w.at(name, {out, C}));
    std::vector<float> b = to_f32(w.at(p + ".bias", {out}));
    std::vector<float> g = to_f32(w.at(ln + ".weight", {C}));
    std::vector<float> be = to_f32(w.at(ln + ".bias", {C}));
    Tensor bt = arena.take({out}, DType::f32);
    for (int64_t n = 0; n < out; ++n) {
      double s = b[n];
      float* row = W.data() + n * C;
      for (int64_t k = 0; k < C; ++k) {
        s += (double)row[k] * be[k];
        row[k] *= g[k];
      }
      bt.f32()[n] = (float)s;
    }
    return matrix(W, out, C, bt);
  };
  auto plain = [&](const std::string& p, int64_t out, int64_t in) {
    const std::string name = p + ".weight";
    if (const io::QuantizedTensor* q = w.find_quantized(name, {out, in})) return quantized(name, *q, vector(p + ".bias", out));
    return matrix(to_f32(w.at(name, {out, in})), out, in, vector(p + ".bias", out));
  };
  // An MoE block: ln_2 kept, the router in f32, one LinearWeight per expert from the slices of
  // the [E, out, in] tensors: float ones packed in the engine's format, quantized ones (stored as
  // one [E * out, in] matrix) packed from the expert's rows for the integer kernels, with the
  // tensor's input quantization (int8 inputs are quantized token-wise by LinearWeight::apply from
  // the gathered ln_2 rows, as for any product whose input is not a folded LayerNorm's output).
  auto moe_block = [&](const std::string& h, int64_t E, Layer& y) {
    y.experts = E;
    y.residual = cfg.moe.use_residual;
    y.ln2_g = vector(h + ".ln_2.weight", C);
    y.ln2_b = vector(h + ".ln_2.bias", C);
    if (y.residual) {
      y.fc = plain(h + ".mlp.c_fc", 4 * C, C);
      y.out = plain(h + ".mlp.c_proj", C, 4 * C);
      y.coef = plain(h + ".moe.coefficient", 2, C);
    }
    y.gate = matrix_as(kernels::PackedType::f32, to_f32(w.at(h + ".moe.gate.weight", {E, C})).data(), E, C, Tensor());
    const std::string p = h + ".moe.experts.";
    const std::vector<float> b1 = to_f32(w.at(p + "c_fc.bias", {E, 4 * C}));
    const std::vector<float> b2 = to_f32(w.at(p + "c_proj.bias", {E, C}));
    auto bias = [&](const std::vector<float>& all, int64_t e, int64_t n) {
      Tensor t = arena.take({n}, DType::f32);
      std::memcpy(t.raw(), all.data() + e * n, n * sizeof(float));
      return t;
    };
    // The E experts' LinearWeights of expert tensor `name` [E, out, in] with biases `b` [E, out].
    auto experts = [&](const std::string& name, int64_t out, int64_t in, const std::vector<float>& b,
                       std::vector<LinearWeight>& dst) {
      if (const io::QuantizedTensor* q = w.find_quantized(name, {E * out, in})) {
        for (int64_t e = 0; e < E; ++e) dst.push_back(quantized(name, q->row_slice(e * out, (e + 1) * out), bias(b, e, out)));
        return;
      }
      const std::vector<float> all = to_f32(w.at(name, {E, out, in}));
      for (int64_t e = 0; e < E; ++e) dst.push_back(matrix_as(ptype, all.data() + e * out * in, out, in, bias(b, e, out)));
    };
    experts(p + "c_fc.weight", 4 * C, C, b1, y.expert_fc);
    experts(p + "c_proj.weight", C, 4 * C, b2, y.expert_out);
  };
  layers.resize(L);
  int64_t max_experts = 0;
  for (int64_t l = 0; l < L; ++l) {
    std::string h = "h." + std::to_string(l);
    Layer& y = layers[l];
    y.qkv = normed(h + ".attn.c_attn", h + ".ln_1", 3 * C, y.ln1_g, y.ln1_b);
    y.proj = plain(h + ".attn.c_proj", C, C);
    if (const int64_t E = cfg.moe.experts_at(l, L); E > 0) {
      moe_block(h, E, y);
      max_experts = std::max(max_experts, E);
      continue;
    }
    y.fc = normed(h + ".mlp.c_fc", h + ".ln_2", 4 * C, y.ln2_g, y.ln2_b);
    y.out = plain(h + ".mlp.c_proj", C, 4 * C);
  }

  max_rows = std::max<int64_t>(kMaxPieceRows, opt.max_sequences);
  x.resize(max_rows * C);
  xn.resize(max_rows * C);
  qkv.resize(max_rows * 3 * C);
  att.resize(max_rows * C);
  hid.resize(max_rows * 4 * C);
  if (max_experts > 0) {
    const int64_t k = cfg.moe.k;
    router_logits.resize(max_rows * max_experts);
    router_probs.resize(max_rows * max_experts);
    slot_gates.resize(max_rows * k);
    moe_in.resize(max_rows * k * C);
    moe_out.resize(max_rows * k * C);
    moe_y.resize(max_rows * C);
    if (cfg.moe.use_residual) {
      dense.resize(max_rows * C);
      mix_logits.resize(max_rows * 2);
      mix.resize(max_rows * 2);
    }
  }
  prepare_scratch(max_rows);
  int64_t widest = C;
  for (const Layer& l : layers) widest = std::max({widest, l.qkv.packed_in(), l.fc.packed_in()});
  xq.reserve(max_rows, widest);
  int64_t hidden_q = 0;
  for (const Layer& l : layers)
    if (fuses_gelu_quantization(l)) hidden_q = std::max(hidden_q, l.out.packed_in());
  if (hidden_q > 0) hq.reserve(max_rows, hidden_q);
  logit_rows.resize(std::min<int64_t>(opt.max_sequences, LinearWeight::kSkinnyMaxRows) * V);
}

void Engine::Impl::prepare_scratch(int64_t M) {
  int64_t need = 0;
  for (const Layer& l : layers) {
    for (const LinearWeight* lw : {&l.qkv, &l.proj, &l.fc, &l.out, &l.gate, &l.coef})
      need = std::max(need, lw->scratch_floats(M));
    // An expert takes at most M rows of a pass (a token chooses an expert at most once).
    for (const std::vector<LinearWeight>* ws : {&l.expert_fc, &l.expert_out})
      for (const LinearWeight& lw : *ws) need = std::max(need, lw.scratch_floats(M));
  }
  need = std::max(need, head.scratch_floats(M));
  if ((int64_t)scratch.size() < need) scratch.resize(need);
  const int64_t threads = omp_get_max_threads();
  if ((int64_t)attn_scores.size() < threads * ctx) attn_scores.resize(threads * ctx);
}

void Engine::Impl::check_chunks(std::span<const Chunk> chunks) {
  seen.assign(opt.max_sequences, 0);
  for (const Chunk& c : chunks) {
    GANNET_CHECK(c.seq >= 0 && c.seq < opt.max_sequences, "engine: sequence ", c.seq, " out of range [0, ",
                 opt.max_sequences, ")");
    GANNET_CHECK(!seen[c.seq], "engine: sequence ", c.seq, " appears twice in one forward call");
    seen[c.seq] = 1;
    GANNET_CHECK(!c.tokens.empty(), "engine: empty chunk for sequence ", c.seq);
    GANNET_CHECK(cache.length(c.seq) + (int64_t)c.tokens.size() <= ctx, "engine: sequence ", c.seq, " would hold ",
                 cache.length(c.seq) + (int64_t)c.tokens.size(), " tokens, more than the context ", ctx);
    for (int32_t t : c.tokens)
      GANNET_CHECK(t >= 0 && t < cfg.vocab_size, "engine: token id ", t, " outside the vocabulary [0, ",
                   cfg.vocab_size, ")");
  }
}

void Engine::Impl::pass(const std::vector<Row>& rs, const std::vector<int64_t>& out_rows, float* logits) {
  const int64_t n = (int64_t)rs.size(), V = cfg.vocab_size;
  prepare_scratch(std::max<int64_t>(n, (int64_t)out_rows.size()));
  float* X = x.data();
  // Embeddings.
  ParallelErrors errors;  // embed.row may allocate (a padded quantized row)
#pragma omp parallel for schedule(static) if (n > 8)
  for (int64_t i = 0; i < n; ++i) {
    errors.run([&] {
      float* xi = X + i * C;
      const float* pe = wpe.f32() + rs[i].pos * C;
      embed.row(rs[i].token, xi);
      for (int64_t c = 0; c < C; ++c) xi[c] += pe[c];
    });
  }
  errors.rethrow();
  const float eps = cfg.layernorm_eps, scale = 1.f / std::sqrt((float)D);
  bool distinct_sequences = true;  // decode passes: one row per sequence
  for (int64_t i = 1; i < n && distinct_sequences; ++i) distinct_sequences = rs[i].seq != rs[i - 1].seq;
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const Layer& L = layers[l];
    norm_then(L.qkv, L.ln1_g, L.ln1_b, n, qkv.data(), 3 * C, kernels::Epilogue::store);
    // New keys and values into the cache, then each row attends over its sequence's prefix. In a
    // decode pass every row is its own sequence, so a (row, head) task stores and attends alone.
    const bool parallel = n * H > 1 && n * H * (rs.back().pos + 1) * D > 32768;
    auto store = [&](int64_t i, int64_t h) {
      const float* q = qkv.data() + i * 3 * C;
      cache.store(rs[i].seq, l, h, rs[i].pos, q + C + h * D, q + 2 * C + h * D);
    };
    auto attend = [&](int64_t i, int64_t h) {
      float* sc = attn_scores.data() + omp_get_thread_num() * ctx;
      kernels::attend_cached(qkv.data() + i * 3 * C + h * D, cache.keys(rs[i].seq, l, h),
                             cache.values(rs[i].seq, l, h), D, rs[i].pos + 1, D, scale, sc,
                             att.data() + i * C + h * D);
    };
    if (distinct_sequences) {
#pragma omp parallel for schedule(static) if (parallel)
      for (int64_t ih = 0; ih < n * H; ++ih) {
        store(ih / H, ih % H);
        attend(ih / H, ih % H);
      }
    } else {
#pragma omp parallel if (parallel)
      {
#pragma omp for schedule(static)
        for (int64_t ih = 0; ih < n * H; ++ih) store(ih / H, ih % H);
#pragma omp for schedule(dynamic, 4)
        for (int64_t ih = 0; ih < n * H; ++ih) attend(ih / H, ih % H);
      }
    }
    L.proj.apply(att.data(), C, n, X, C, kernels::Epilogue::accumulate, scratch.data());
    if (L.experts > 0) {
      kernels::layernorm_forward(X, L.ln2_g.f32(), L.ln2_b.f32(), xn.data(), nullptr, nullptr, n, C, eps);
      moe_forward(L, n);
      continue;
    }
    mlp(L, n);
  }
  // Final LayerNorm of the rows whose logits are wanted, then the tied LM head.
  const int64_t m = (int64_t)out_rows.size();
  for (int64_t j = 0; j < m; ++j)
    kernels::layernorm_forward(X + out_rows[j] * C, lnf_g.f32(), lnf_b.f32(), xn.data() + j * C, nullptr, nullptr,
                               1, C, eps);
  if (m > 0) head.apply(xn.data(), C, m, logits, V, kernels::Epilogue::store, scratch.data());
}

void Engine::Impl::moe_forward(const Layer& L, int64_t n) {
  const int64_t E = L.experts, k = cfg.moe.k;
  float* X = x.data();
  const float* Xn = xn.data();
  // Router in f32, softmax, then top-k without a capacity limit (dropless): every row keeps its k
  // choices whatever else is in the pass. Slots come grouped by expert (a counting sort).
  L.gate.apply(Xn, C, n, router_logits.data(), E, kernels::Epilogue::store, scratch.data());
  kernels::softmax_forward(router_logits.data(), router_probs.data(), n, E);
  const float* p = router_probs.data();
  kernels::route_top_k(p, n, E, k, /*capacity=*/-1, nullptr, routing);
  const int64_t S = routing.slots();
  const int32_t* off = routing.offsets.data();
  // Gates: the chosen probabilities, divided by their sum over the token's choices when k > 1
  // (autograd::moe_router with normalize_gates, summed in the same order).
  float* g = slot_gates.data();
  for (int64_t e = 0; e < E; ++e)
    for (int32_t s = off[e]; s < off[e + 1]; ++s) g[s] = p[routing.slot_token[s] * E + e];
  if (k > 1)
    for (int64_t t = 0; t < n; ++t) {
      const int32_t b = routing.token_offsets[t], end = routing.token_offsets[t + 1];
      float d = 0;
      for (int32_t i = b; i < end; ++i) d += g[routing.token_slots[i]];
      d = std::max(d, FLT_EPSILON);
      for (int32_t i = b; i < end; ++i) g[routing.token_slots[i]] /= d;
    }
  // Each expert's rows, gathered into one contiguous block, through its MLP.
  kernels::gather_rows(Xn, routing.slot_token.data(), S, C, moe_in.data());
  for (int64_t e = 0; e < E; ++e) {
    const int64_t r0 = off[e], M = off[e + 1] - r0;
    if (M == 0) continue;
    L.expert_fc[e].apply(moe_in.data() + r0 * C, C, M, hid.data(), 4 * C, kernels::Epilogue::gelu, scratch.data());
    L.expert_out[e].apply(hid.data(), 4 * C, M, moe_out.data() + r0 * C, C, kernels::Epilogue::store, scratch.data());
  }
  // Each token's slots, weighted by their gates (in slot order: the token's experts ascending).
  kernels::combine_rows(moe_out.data(), g, routing.token_offsets.data(), routing.token_slots.data(), n, C, false,
                        moe_y.data());
  if (!L.residual) return kernels::add_inplace(X, moe_y.data(), n * C);
  // PR-MoE: the dense MLP on the same input, mixed with the MoE output by a learned 2-way softmax.
  L.fc.apply(Xn, C, n, hid.data(), 4 * C, kernels::Epilogue::gelu, scratch.data());
  L.out.apply(hid.data(), 4 * C, n, dense.data(), C, kernels::Epilogue::store, scratch.data());
  L.coef.apply(Xn, C, n, mix_logits.data(), 2, kernels::Epilogue::store, scratch.data());
  kernels::softmax_forward(mix_logits.data(), mix.data(), n, 2);
#pragma omp parallel for schedule(static) if (n * C >= (1 << 15))
  for (int64_t t = 0; t < n; ++t) {
    const float p0 = mix[2 * t], p1 = mix[2 * t + 1];
    const float *a = moe_y.data() + t * C, *b = dense.data() + t * C;
    float* xt = X + t * C;
    for (int64_t c = 0; c < C; ++c) {
      const float v = p0 * a[c] + p1 * b[c];
      xt[c] += v;
    }
  }
}

void Engine::Impl::norm_then(const LinearWeight& w, const Tensor& gamma, const Tensor& beta, int64_t n, float* y,
                             int64_t ldy, kernels::Epilogue e) {
  if (takes_fused_inputs(w)) return w.apply_quantized(norm_quantized(w, gamma, beta, n), y, ldy, e);
  kernels::layernorm_forward(x.data(), gamma.f32(), beta.f32(), xn.data(), nullptr, nullptr, n, C, cfg.layernorm_eps);
  w.apply(xn.data(), C, n, y, ldy, e, scratch.data());
}

void Engine::Impl::mlp(const Layer& L, int64_t n) {
  if (!fuses_gelu_quantization(L)) {
    norm_then(L.fc, L.ln2_g, L.ln2_b, n, hid.data(), 4 * C, kernels::Epilogue::gelu);
    return L.out.apply(hid.data(), 4 * C, n, x.data(), C, kernels::Epilogue::accumulate, scratch.data());
  }
  // c_proj's inputs: c_fc's 4C GELU outputs quantized by c_fc's kernel.
  const kernels::QuantizedRows h = L.fc.apply_quantized_gelu(norm_quantized(L.fc, L.ln2_g, L.ln2_b, n), hid.data(),
                                                             4 * C, L.out, hq.q.data(), hq.scale.data(), hq.zero.data());
  L.out.apply_quantized(h, x.data(), C, kernels::Epilogue::accumulate);
}

Engine::Engine(const io::GptWeights& weights, const EngineOptions& options)
    : impl_(std::make_unique<Impl>(weights, options)) {}
Engine::~Engine() = default;

const models::GptConfig& Engine::config() const { return impl_->cfg; }
const EngineOptions& Engine::options() const { return impl_->opt; }
int64_t Engine::max_context() const { return impl_->ctx; }

int64_t Engine::length(int64_t seq) const {
  GANNET_CHECK(seq >= 0 && seq < max_sequences(), "engine: sequence ", seq, " out of range");
  return impl_->cache.length(seq);
}

void Engine::reset(int64_t seq) {
  GANNET_CHECK(seq >= 0 && seq < max_sequences(), "engine: sequence ", seq, " out of range");
  impl_->cache.set_length(seq, 0);
}

void Engine::Impl::run_chunk(const Chunk& c, bool all_logits, float* logits) {
  const int64_t n = (int64_t)c.tokens.size(), start = cache.length(c.seq), V = cfg.vocab_size;
  std::vector<Row> rs;
  std::vector<int64_t> outs;
  for (int64_t b = 0; b < n; b += kMaxPieceRows) {
    const int64_t e = std::min(n, b + kMaxPieceRows);
    rs.clear();
    outs.clear();
    for (int64_t i = b; i < e; ++i) rs.push_back({c.seq, start + i, c.tokens[i]});
    if (all_logits) {
      for (int64_t i = b; i < e; ++i) outs.push_back(i - b);
    } else if (e == n) {
      outs.push_back(e - 1 - b);
    }
    pass(rs, outs, all_logits ? logits + b * V : logits);
    cache.set_length(c.seq, start + e);
  }
}

void Engine::forward(std::span<const Chunk> chunks, float* logits) {
  Impl& m = *impl_;
  m.check_chunks(chunks);
  const int64_t V = vocab_size();
  // Single-token chunks (decode steps) run together, each row computed on its own; longer chunks
  // run one at a time, in pieces, so that no sequence's result depends on the rest of the call.
  // Reused buffers: a decode step allocates nothing once they have grown.
  std::vector<int64_t>& decode = m.decode_chunks;
  std::vector<Row>& rows = m.step_rows;
  std::vector<int64_t>& outs = m.step_outs;
  decode.clear();
  for (size_t i = 0; i < chunks.size(); ++i)
    if (chunks[i].tokens.size() == 1) decode.push_back((int64_t)i);
  for (size_t b = 0; b < decode.size(); b += LinearWeight::kSkinnyMaxRows) {
    const size_t e = std::min(decode.size(), b + (size_t)LinearWeight::kSkinnyMaxRows);
    rows.clear();
    outs.clear();
    for (size_t j = b; j < e; ++j) {
      const Chunk& c = chunks[decode[j]];
      rows.push_back({c.seq, m.cache.length(c.seq), c.tokens[0]});
      outs.push_back((int64_t)(j - b));
    }
    if ((int64_t)m.logit_rows.size() < (int64_t)outs.size() * V) m.logit_rows.resize(outs.size() * V);
    m.pass(rows, outs, m.logit_rows.data());
    for (size_t j = b; j < e; ++j) {
      const Chunk& c = chunks[decode[j]];
      std::memcpy(logits + decode[j] * V, m.logit_rows.data() + (j - b) * V, V * sizeof(float));
      m.cache.set_length(c.seq, m.cache.length(c.seq) + 1);
    }
  }
  for (size_t i = 0; i < chunks.size(); ++i)
    if (chunks[i].tokens.size() > 1) m.run_chunk(chunks[i], false, logits + i * V);
}

void Engine::forward_all(const Chunk& chunk, float* logits) {
  impl_->check_chunks(std::span<const Chunk>(&chunk, 1));
  impl_->run_chunk(chunk, true, logits);
}

int64_t Engine::weight_bytes_per_step() const {
  const Impl& m = *impl_;
  int64_t bytes = m.head.weight_bytes() + 2 * m.C * 4;
  auto product = [](const LinearWeight& lw) { return lw.weight_bytes() + lw.out_features() * 4; };
  for (const Layer& l : m.layers) {
    // A quantized layer's LayerNorm reads its gamma and beta (folded ones cost nothing); so does
    // an MoE block's ln_2, which stays unfolded.
    if (l.qkv.quantized()) bytes += 2 * m.C * 4;
    if (l.experts == 0 && l.fc.quantized()) bytes += 2 * m.C * 4;  // an MoE block's ln_2 is counted below
    bytes += product(l.qkv) + product(l.proj);
    if (l.has_mlp()) bytes += product(l.fc) + product(l.out);
    if (l.experts == 0) continue;
    // The router, and the k experts one token goes to.
    bytes += 2 * m.C * 4 + l.gate.weight_bytes() + m.cfg.moe.k * (product(l.expert_fc[0]) + product(l.expert_out[0]));
    if (l.residual) bytes += product(l.coef);
  }
  return bytes;
}

double Engine::flops_per_token(int64_t pos, bool with_head) const {
  const models::GptConfig& c = config();
  const double C = (double)c.n_embd;
  double flops = 0;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    // Products: attention 4C^2, the MLP 8C^2 (an MoE block: the router, k experts, and for
    // PR-MoE the dense MLP and the mixing coefficient); then QK^T and PV.
    const double E = (double)c.moe.experts_at(l, c.n_layer);
    double macs = 4.0 * C * C;
    if (E == 0) macs += 8.0 * C * C;
    else macs += E * C + (double)c.moe.k * 8.0 * C * C + (c.moe.use_residual ? 8.0 * C * C + 2.0 * C : 0.0);
    flops += 2.0 * macs + 4.0 * (double)(pos + 1) * C;
  }
  return flops + (with_head ? 2.0 * C * (double)c.vocab_size : 0.0);
}

}  // namespace gannet::infer
