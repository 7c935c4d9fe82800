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
#include "gannet/dist/communicator.h"
#include "gannet/infer/engine_calls.h"
#include "gannet/infer/engine_weights.h"
#include "gannet/infer/fused_input_quantization.h"
#include "gannet/infer/kv_cache.h"
#include "gannet/infer/linear_weight.h"
#include "gannet/infer/streamed_weights.h"
#include "gannet/kernels/bias.h"
#include "gannet/kernels/cached_attention.h"
#include "gannet/kernels/layernorm.h"
#include "gannet/kernels/moe_dispatch.h"
#include "gannet/kernels/moe_routing.h"
#include "gannet/kernels/quantize_rows.h"
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
  // Tensor parallelism (null: one process): this rank's heads, attention width (Hl D), MLP width
  // and vocabulary rows; one process: H, C, 4C and V.
  dist::Communicator* tp = nullptr;
  int64_t Hl = 0, A = 0, F = 0, Vl = 0;
  // Rank 0 of a group whose other ranks follow it (EngineOptions::lead_followers): it sends them
  // each call before making it.
  bool leads() const { return tp && opt.lead_followers && tp->rank() == 0; }
  bool follows() const { return tp && opt.lead_followers && tp->rank() != 0; }
  std::vector<float> partial, local_logits, gathered;  // a row-parallel product's share; the head's
  // X += w(in) for rows [0, n): with tensor parallelism each rank's share summed over the group.
  void add_product(const LinearWeight& w, const float* in, int64_t ldin, int64_t n, float* X);
  // A row-parallel product with token-wise int8 inputs: each row's scale from its maximum over the
  // whole row (all ranks' columns), so the integers are those one process would use.
  std::vector<float> row_max, row_scale, row_inv;
  std::vector<int8_t> row_q;
  // Y [n, C] = this rank's share of w(in) (inputs: this rank's columns), before the sum over ranks.
  void row_parallel_share(const LinearWeight& w, const float* in, int64_t ldin, int64_t n, float* Y);
  void apply_row_parallel_int8(const LinearWeight& w, const float* in, int64_t ldin, int64_t n, float* Y);
  // The head's logits of m rows of xn into logits [m, V].
  void head_logits(const HeadWeights& head, int64_t m, bool wide, float* logits);
  DType wtype = DType::f32;
  // The weights. In memory: all of them, in one arena. Streamed: the small resident tensors here,
  // and heads and layers are the copies for the ring's first slot, for their shapes and formats
  // only; a pass gets the ones it runs on from `streamed`.
  HeadWeights heads;
  ResidentTensors resident;
  std::vector<Layer> layers;
  std::unique_ptr<StreamedWeights> streamed;
  const HeadWeights& use_head() { return streamed ? streamed->head() : heads; }
  void done_with_embedding() {
    if (streamed) streamed->release_head();
  }
  const Layer& use_layer(int64_t l) { return streamed ? streamed->layer(l) : layers[l]; }
  void done_with_layer(int64_t l) {
    if (streamed) streamed->release_layer(l);
  }
  // Block l on rows rs[0, n) of X; `distinct`: each row is its own sequence (a decode pass).
  // Rows a pass runs through a layer at a time: all of them, except in a wide decode pass (more
  // rows than the skinny kernel takes, streaming only), which goes in groups it takes.
  void layer_forward(const Layer& L, int64_t l, const Row* rs, int64_t n, bool distinct, float* X);
  void prepare_weights(const io::GptWeights& w);
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
  void moe_forward(const Layer& L, int64_t l, float* X, int64_t n);
  std::vector<int64_t> routed;  // moe_forward's scratch: the experts a pass routes to
  // LayerNorm then the product that reads it; an int8-input quantized product gets its input
  // quantized by the LayerNorm itself (kernels/layernorm_quantize.h).
  void norm_then(const LinearWeight& w, const Tensor& gamma, const Tensor& beta, const float* X, int64_t n, float* y,
                 int64_t ldy, kernels::Epilogue e);
  // Rows [0, n) of x through LayerNorm, quantized for w's int8 or int4 inputs into xq, as
  // ZeroQuant's fused LayerNorm does.
  kernels::QuantizedRows norm_quantized(const LinearWeight& w, const Tensor& gamma, const Tensor& beta, const float* X,
                                        int64_t n) {
    return layernorm_quantized(w, X, n, C, gamma.f32(), beta.f32(), cfg.layernorm_eps, xq);
  }
  // The dense MLP of block L on rows [0, n): X += c_proj(gelu(c_fc(ln_2(X)))). With int8 inputs to
  // both products, c_fc quantizes its GELU output for c_proj itself (ZeroQuant's fusion).
  void mlp(const Layer& L, float* X, int64_t n);

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
// The tensor-parallel group, or null for one process (no group, or a group of one).
dist::Communicator* tensor_group(const EngineOptions& o) {
  return o.tensor_parallel && o.tensor_parallel->size() > 1 ? o.tensor_parallel : nullptr;
}
int64_t group_size(const EngineOptions& o) { return tensor_group(o) ? tensor_group(o)->size() : 1; }
}  // namespace

Engine::Impl::Impl(const io::GptWeights& w, const EngineOptions& o)
    : cfg(w.config),
      opt(o),
      C(w.config.n_embd),
      H(w.config.n_head),
      D(w.config.n_embd / w.config.n_head),
      ctx(context_of(w, o)),
      tp(tensor_group(o)),
      Hl(w.config.n_head / group_size(o)),
      A(Hl * D),
      F(4 * w.config.n_embd / group_size(o)),
      Vl(TensorSlice{0, (int)group_size(o)}.vocab_rows(w.config.vocab_size)),
      wtype(o.weights == WeightFormat::bf16 ? DType::bf16 : DType::f32),
      cache(w.config.n_layer, o.max_sequences, w.config.n_head / group_size(o), w.config.n_embd / w.config.n_head, ctx) {
  cfg.validate();
  const int64_t V = cfg.vocab_size;
  if (cfg.moe.enabled()) {
    GANNET_CHECK(cfg.moe.router == "top_k", "engine: MoE routing '", cfg.moe.router,
                 "' is not causal (each expert picks among all tokens of a batch, so a token's output would depend "
                 "on later tokens and on other sequences); the engine runs top_k routing only");
  }
  GANNET_CHECK(!(tp && o.offload_disk && cfg.moe.enabled()), "engine: an expert-parallel MoE model is not streamed "
               "from disk (give --offload none, or run one process)");
  prepare_weights(w);
  int64_t max_experts = 0;
  for (const Layer& l : layers) max_experts = std::max(max_experts, l.experts);
  max_rows = std::max<int64_t>(kMaxPieceRows, opt.max_sequences);
  x.resize(max_rows * C);
  xn.resize(max_rows * C);
  qkv.resize(max_rows * 3 * A);
  att.resize(max_rows * A);
  hid.resize(max_rows * (max_experts > 0 ? 4 * C : F));  // experts and PR-MoE's MLP: whole on every rank
  if (tp) partial.resize(max_rows * C);
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

void Engine::Impl::prepare_weights(const io::GptWeights& w) {
  // Float matrices take the engine's format; a quantized model's quantized matrices keep theirs.
  const EngineWeightBuilder b(w, wtype == DType::f32 ? kernels::PackedType::f32 : kernels::PackedType::bf16,
                              TensorSlice{tp ? tp->rank() : 0, (int)group_size(opt), opt.expert_parallel});
  const int64_t L = cfg.n_layer;
  if (opt.offload_disk) {
    std::shared_ptr<void> owner = allocate_huge_pages(b.resident_bytes(ctx), "the resident weights");
    WeightArena arena(owner, b.resident_bytes(ctx));
    resident = b.resident(ctx, arena);
    streamed = std::make_unique<StreamedWeights>(w, b, StreamOptions{opt.max_resident_bytes, opt.offload_dir});
    heads = streamed->head_shapes();
    layers = streamed->layer_shapes();
    return;
  }
  // One arena for everything the kernels stream.
  size_t bytes = b.resident_bytes(ctx) + b.head_bytes();
  for (int64_t l = 0; l < L; ++l) bytes += b.layer_bytes(l);
  WeightArena arena(allocate_huge_pages(bytes, "the weights"), bytes);
  heads = b.head(arena);
  resident = b.resident(ctx, arena);
  layers.resize(L);
  for (int64_t l = 0; l < L; ++l) layers[l] = b.layer(l, arena);
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
  need = std::max(need, heads.head.scratch_floats(M));
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
  const int64_t n = (int64_t)rs.size();
  prepare_scratch(std::max<int64_t>(n, (int64_t)out_rows.size()));
  float* X = x.data();
  // Embeddings.
  const HeadWeights& hw = use_head();
  ParallelErrors errors;  // embed.row may allocate (a padded quantized row)
  // With tensor parallelism the rank holding a token's row gives it, the others zeros, summed.
  const int64_t row0 = tp ? tp->rank() * Vl : 0;
  auto embed = [&](int64_t i, float* xi) {
    const int64_t r = rs[i].token - row0;
    if (r >= 0 && r < Vl) hw.embed.row(r, xi);  // one process: Vl = V
    else std::fill(xi, xi + C, 0.f);
  };
#pragma omp parallel for schedule(static) if (n > 8)
  for (int64_t i = 0; i < n; ++i) {
    errors.run([&] {
      float* xi = X + i * C;
      const float* pe = resident.wpe.f32() + rs[i].pos * C;
      embed(i, xi);
      if (tp) return;
      for (int64_t c = 0; c < C; ++c) xi[c] += pe[c];
    });
  }
  errors.rethrow();
  if (tp) {
    tp->all_reduce_sum(X, n * C);
    for (int64_t i = 0; i < n; ++i) kernels::add_inplace(X + i * C, resident.wpe.f32() + rs[i].pos * C, C);
  }
  done_with_embedding();
  // A wide decode pass (more decode rows than the skinny kernel takes; streaming only) runs each
  // layer and the head on groups of rows it takes, so that every row meets the kernels it meets in
  // memory, where decode passes are that narrow.
  bool distinct = true;
  for (int64_t i = 1; i < n && distinct; ++i) distinct = rs[i].seq != rs[i - 1].seq;
  const bool wide = distinct && n > LinearWeight::kSkinnyMaxRows;
  const int64_t group = wide ? LinearWeight::kSkinnyMaxRows : n;
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const Layer& L = use_layer(l);
    for (int64_t g = 0; g < n; g += group)
      layer_forward(L, l, rs.data() + g, std::min(group, n - g), distinct, X + g * C);
    done_with_layer(l);
  }
  // Final LayerNorm of the rows whose logits are wanted, then the tied LM head (held, streaming,
  // until the next pass's embedding).
  const HeadWeights& head = use_head();
  const int64_t m = (int64_t)out_rows.size();
  for (int64_t j = 0; j < m; ++j)
    kernels::layernorm_forward(X + out_rows[j] * C, resident.lnf_g.f32(), resident.lnf_b.f32(), xn.data() + j * C,
                               nullptr, nullptr, 1, C, cfg.layernorm_eps);
  head_logits(head, m, wide, logits);
}

void Engine::Impl::head_logits(const HeadWeights& head, int64_t m, bool wide, float* logits) {
  const int64_t V = cfg.vocab_size, head_group = wide ? LinearWeight::kSkinnyMaxRows : std::max<int64_t>(m, 1);
  const int64_t W = Vl;  // the rows this rank holds (one process: V)
  float* out = logits;
  if (tp) {
    local_logits.resize(m * Vl);
    out = local_logits.data();
  }
  for (int64_t j = 0; j < m; j += head_group)
    head.head.apply(xn.data() + j * C, C, std::min(head_group, m - j), out + j * W, W, kernels::Epilogue::store,
                    scratch.data());
  if (!tp || m == 0) return;
  // Every rank's [m, Vl] block, then each row's columns in vocabulary order (the padding dropped).
  const int64_t t = tp->size();
  gathered.resize(t * m * Vl);
  tp->all_gather(local_logits.data(), gathered.data(), m * Vl);
  for (int64_t r = 0; r < t; ++r) {
    const int64_t v0 = r * Vl, cols = std::max<int64_t>(0, std::min(V, v0 + Vl) - v0);
    for (int64_t j = 0; j < m; ++j)
      std::copy(gathered.data() + (r * m + j) * Vl, gathered.data() + (r * m + j) * Vl + cols, logits + j * V + v0);
  }
}

void Engine::Impl::add_product(const LinearWeight& w, const float* in, int64_t ldin, int64_t n, float* X) {
  if (!tp) return w.apply(in, ldin, n, X, C, kernels::Epilogue::accumulate, scratch.data());
  row_parallel_share(w, in, ldin, n, partial.data());
  tp->all_reduce_sum(partial.data(), n * C);
  kernels::add_inplace(X, partial.data(), n * C);
}

void Engine::Impl::row_parallel_share(const LinearWeight& w, const float* in, int64_t ldin, int64_t n, float* Y) {
  const io::ActivationQuant& a = w.activation_quant();
  if (w.quantized() && a.int8() && a.static_scale == 0.f) return apply_row_parallel_int8(w, in, ldin, n, Y);
  w.apply(in, ldin, n, Y, C, kernels::Epilogue::store, scratch.data());
}

void Engine::Impl::apply_row_parallel_int8(const LinearWeight& w, const float* in, int64_t ldin, int64_t n,
                                           float* Y) {
  const int64_t K = w.in_features(), Kp = w.packed_in();
  row_max.resize(n);
  row_scale.resize(n);
  row_inv.resize(n);
  row_q.resize(n * Kp);
  kernels::rows_abs_max(in, ldin, n, K, row_max.data());
  tp->all_reduce_max(row_max.data(), n);
  for (int64_t m = 0; m < n; ++m) {
    const kernels::RowScale s = kernels::row_scale(row_max[m], 0.f);
    row_scale[m] = s.scale;
    row_inv[m] = s.inv;
  }
  kernels::quantize_rows_inv(in, ldin, n, K, row_inv.data(), row_q.data(), Kp);
  if (Kp > K)
    for (int64_t m = 0; m < n; ++m) std::memset(row_q.data() + m * Kp + K, 0, Kp - K);
  w.apply_quantized({row_q.data(), Kp, row_scale.data(), n, Kp}, Y, C, kernels::Epilogue::store);
}

void Engine::Impl::layer_forward(const Layer& L, int64_t l, const Row* rs, int64_t n, bool distinct, float* X) {
  const float eps = cfg.layernorm_eps, scale = 1.f / std::sqrt((float)D);
  norm_then(L.qkv, L.ln1_g, L.ln1_b, X, n, qkv.data(), 3 * A, kernels::Epilogue::store);
  // New keys and values into the cache, then each row attends over its sequence's prefix. In a
  // decode pass every row is its own sequence, so a (row, head) task stores and attends alone.
  // This rank's Hl heads (all H in one process): q, k, v of row i at i * 3A, + A, + 2A.
  const bool parallel = n * Hl > 1 && n * Hl * (rs[n - 1].pos + 1) * D > 32768;
  auto store = [&](int64_t i, int64_t h) {
    const float* q = qkv.data() + i * 3 * A;
    cache.store(rs[i].seq, l, h, rs[i].pos, q + A + h * D, q + 2 * A + h * D);
  };
  auto attend = [&](int64_t i, int64_t h) {
    float* sc = attn_scores.data() + omp_get_thread_num() * ctx;
    kernels::attend_cached(qkv.data() + i * 3 * A + h * D, cache.keys(rs[i].seq, l, h), cache.values(rs[i].seq, l, h),
                           D, rs[i].pos + 1, D, scale, sc, att.data() + i * A + h * D);
  };
  if (distinct) {
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t ih = 0; ih < n * Hl; ++ih) {
      store(ih / Hl, ih % Hl);
      attend(ih / Hl, ih % Hl);
    }
  } else {
#pragma omp parallel if (parallel)
    {
#pragma omp for schedule(static)
      for (int64_t ih = 0; ih < n * Hl; ++ih) store(ih / Hl, ih % Hl);
#pragma omp for schedule(dynamic, 4)
      for (int64_t ih = 0; ih < n * Hl; ++ih) attend(ih / Hl, ih % Hl);
    }
  }
  add_product(L.proj, att.data(), A, n, X);
  if (L.experts > 0) {
    kernels::layernorm_forward(X, L.ln2_g.f32(), L.ln2_b.f32(), xn.data(), nullptr, nullptr, n, C, eps);
    return moe_forward(L, l, X, n);
  }
  mlp(L, X, n);
}

void Engine::Impl::moe_forward(const Layer& L, int64_t l, float* X, int64_t n) {
  const int64_t E = L.experts, k = cfg.moe.k;
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
  // Streamed, the experts chosen are read now (they are not read ahead).
  if (streamed) {
    routed.clear();
    for (int64_t e = 0; e < E; ++e)
      if (off[e + 1] > off[e]) routed.push_back(e);
    streamed->load_experts(l, routed);
  }
  // Each expert's rows, gathered into one contiguous block, through its MLP. Tensor-parallel, each
  // rank runs its share of every expert (its hidden units), or with expert_parallel its own
  // experts whole, the others' slots counting zero (every rank holds every row).
  kernels::gather_rows(Xn, routing.slot_token.data(), S, C, moe_in.data());
  for (int64_t e = 0; e < E; ++e) {
    const int64_t r0 = off[e], M = off[e + 1] - r0;
    if (M == 0) continue;
    const LinearWeight &fc = L.expert_fc[e], &out = L.expert_out[e];
    if (fc.out_features() == 0) {  // another rank's expert
      std::fill(moe_out.data() + r0 * C, moe_out.data() + (r0 + M) * C, 0.f);
      continue;
    }
    fc.apply(moe_in.data() + r0 * C, C, M, hid.data(), 4 * C, kernels::Epilogue::gelu, scratch.data());
    if (tp && !opt.expert_parallel) row_parallel_share(out, hid.data(), 4 * C, M, moe_out.data() + r0 * C);
    else out.apply(hid.data(), 4 * C, M, moe_out.data() + r0 * C, C, kernels::Epilogue::store, scratch.data());
  }
  // Each token's slots, weighted by their gates (in slot order: the token's experts ascending);
  // expert-parallel, each rank's share summed over the group (the one exchange of the block's
  // second half: no all-to-all, as the tensor-parallel group already holds every token).
  kernels::combine_rows(moe_out.data(), g, routing.token_offsets.data(), routing.token_slots.data(), n, C, false,
                        moe_y.data());
  if (tp) tp->all_reduce_sum(moe_y.data(), n * C);
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

void Engine::Impl::norm_then(const LinearWeight& w, const Tensor& gamma, const Tensor& beta, const float* X,
                             int64_t n, float* y, int64_t ldy, kernels::Epilogue e) {
  if (takes_fused_inputs(w)) return w.apply_quantized(norm_quantized(w, gamma, beta, X, n), y, ldy, e);
  kernels::layernorm_forward(X, gamma.f32(), beta.f32(), xn.data(), nullptr, nullptr, n, C, cfg.layernorm_eps);
  w.apply(xn.data(), C, n, y, ldy, e, scratch.data());
}

void Engine::Impl::mlp(const Layer& L, float* X, int64_t n) {
  // Tensor-parallel, c_fc's GELU output is a share of each row, so c_proj's int8 inputs take their
  // scales from add_product instead.
  if (tp || !fuses_gelu_quantization(L)) {
    norm_then(L.fc, L.ln2_g, L.ln2_b, X, n, hid.data(), F, kernels::Epilogue::gelu);
    return add_product(L.out, hid.data(), F, n, X);
  }
  // c_proj's inputs: c_fc's 4C GELU outputs quantized by c_fc's kernel.
  const kernels::QuantizedRows h = L.fc.apply_quantized_gelu(norm_quantized(L.fc, L.ln2_g, L.ln2_b, X, n), hid.data(),
                                                             4 * C, L.out, hq.q.data(), hq.scale.data(), hq.zero.data());
  L.out.apply_quantized(h, X, C, kernels::Epilogue::accumulate);
}

Engine::Engine(const io::GptWeights& weights, const EngineOptions& options)
    : impl_(std::make_unique<Impl>(weights, options)) {}

Engine::~Engine() {
  if (!impl_->leads()) return;
  try {
    send_call(*impl_->tp, EngineCall{});  // stop: the followers' follow() returns
  } catch (...) {
    // The group is broken already; whoever broke it ends the job (dist::abort_world).
  }
}

void Engine::follow() {
  Impl& m = *impl_;
  GANNET_CHECK(m.follows(), "engine: follow() is for the ranks other than 0 of a group led by rank 0");
  const int64_t V = vocab_size();
  std::vector<float> logits;
  for (;;) {
    const EngineCall call = receive_call(*m.tp);
    const std::vector<Chunk> chunks = call.chunks();
    switch (call.op) {
      case EngineCall::Op::stop:
        return;
      case EngineCall::Op::reset:
        reset(call.seqs.at(0));
        break;
      case EngineCall::Op::forward:
        logits.resize(chunks.size() * V);
        forward(chunks, logits.data());
        break;
      case EngineCall::Op::forward_all:
        GANNET_CHECK(chunks.size() == 1, "engine: a forward_all call carries one chunk");
        logits.resize(chunks[0].tokens.size() * V);
        forward_all(chunks[0], logits.data());
        break;
    }
  }
}

const models::GptConfig& Engine::config() const { return impl_->cfg; }
const EngineOptions& Engine::options() const { return impl_->opt; }
int64_t Engine::max_context() const { return impl_->ctx; }

int64_t Engine::length(int64_t seq) const {
  GANNET_CHECK(seq >= 0 && seq < max_sequences(), "engine: sequence ", seq, " out of range");
  return impl_->cache.length(seq);
}

void Engine::reset(int64_t seq) {
  GANNET_CHECK(seq >= 0 && seq < max_sequences(), "engine: sequence ", seq, " out of range");
  if (impl_->leads()) send_call(*impl_->tp, EngineCall::of_reset(seq));
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
  if (m.leads()) send_call(*m.tp, EngineCall::of_chunks(EngineCall::Op::forward, chunks));
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
  // Streaming, every decode row goes in one pass (each streamed layer serves them all).
  const size_t per_pass = m.streamed ? std::max<size_t>(decode.size(), 1) : (size_t)LinearWeight::kSkinnyMaxRows;
  for (size_t b = 0; b < decode.size(); b += per_pass) {
    const size_t e = std::min(decode.size(), b + per_pass);
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
  if (impl_->leads())
    send_call(*impl_->tp, EngineCall::of_chunks(EngineCall::Op::forward_all, std::span<const Chunk>(&chunk, 1)));
  impl_->run_chunk(chunk, true, logits);
}

Engine::StreamStats Engine::stream_stats() const {
  const StreamedWeights* s = impl_->streamed.get();
  if (!s) return {};
  Engine::StreamStats st;
  st.slots = s->slots();
  st.slot_bytes = s->slot_bytes();
  st.bytes_per_pass = s->bytes_per_pass();
  st.bytes_read = s->bytes_read();
  st.file_bytes = s->file_bytes();
  st.read_seconds = s->read_seconds();
  st.wait_seconds = s->wait_seconds();
  return st;
}

double Engine::measure_disk_read_gbps(int64_t bytes) {
  GANNET_CHECK(impl_->streamed, "engine: the weights are not streamed from disk");
  return impl_->streamed->measure_read_gbps(bytes);
}

int64_t Engine::weight_bytes_per_step() const {
  const Impl& m = *impl_;
  int64_t bytes = m.heads.head.weight_bytes() + 2 * m.C * 4;
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
    size_t e = 0;  // an expert this rank holds (expert-parallel, the others' are empty)
    while (l.expert_fc[e].out_features() == 0) ++e;
    bytes += 2 * m.C * 4 + l.gate.weight_bytes() + m.cfg.moe.k * (product(l.expert_fc[e]) + product(l.expert_out[e]));
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
