#include "gannet/infer/engine_weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "gannet/core/dtype.h"
#include "gannet/core/error.h"
#include "gannet/kernels/skinny_matmul.h"

namespace gannet::infer {

size_t arena_bytes(DType t, int64_t n) { return (dtype_bytes(t, n) + 63) / 64 * 64; }

WeightArena::WeightArena(std::shared_ptr<void> owner, size_t bytes) : owner_(std::move(owner)), size_(bytes) {}

Tensor WeightArena::take(const Shape& shape, DType dtype) {
  const size_t bytes = arena_bytes(dtype, shape_numel(shape));
  GANNET_CHECK(used_ + bytes <= size_, "engine: weight arena overflow");
  Tensor t = Tensor::wrap(base() + used_, shape, dtype, owner_);
  used_ += bytes;
  return t;
}

void WeightArena::align(size_t alignment) {
  const size_t at = (used_ + alignment - 1) / alignment * alignment;
  GANNET_CHECK(at <= size_, "engine: weight arena overflow");
  used_ = at;
}

Relocation relocation(const char* from, size_t bytes, char* to, std::shared_ptr<void> owner) {
  return [=](const Tensor& t) {
    if (!t.defined()) return t;
    const char* p = static_cast<const char*>(t.raw());
    GANNET_CHECK(p >= from && p + t.nbytes() <= from + bytes, "engine: a weight lies outside its unit's block");
    return Tensor::wrap(to + (p - from), t.shape(), t.dtype(), owner);
  };
}

Layer relocated(const Layer& layer, const Relocation& move) {
  Layer y = layer;
  for (LinearWeight* lw : {&y.qkv, &y.proj, &y.fc, &y.out, &y.gate, &y.coef}) *lw = lw->relocated(move);
  for (std::vector<LinearWeight>* ws : {&y.expert_fc, &y.expert_out})
    for (LinearWeight& lw : *ws) lw = lw.relocated(move);
  for (Tensor* t : {&y.ln1_g, &y.ln1_b, &y.ln2_g, &y.ln2_b}) *t = move(*t);
  return y;
}

HeadWeights relocated(const HeadWeights& head, const Relocation& move) {
  return {head.embed.relocated(move), head.head.relocated(move)};
}

namespace {
// A weight's values as f32, in a vector the preparation may change.
std::vector<float> to_f32(const Tensor& t) {
  Tensor f = as_f32(t);
  return std::vector<float>(f.f32(), f.f32() + f.numel());
}
}  // namespace

EngineWeightBuilder::EngineWeightBuilder(const io::GptWeights& weights, kernels::PackedType ptype, TensorSlice slice)
    : w_(weights),
      cfg_(weights.config),
      C_(weights.config.n_embd),
      ptype_(ptype),
      wtype_(ptype == kernels::PackedType::f32 ? DType::f32 : DType::bf16),
      slice_(slice) {
  if (slice_.size == 1) return;
  for (int64_t l = 0; l < cfg_.n_layer && slice_.whole_experts; ++l) {
    const int64_t E = cfg_.moe.experts_at(l, cfg_.n_layer);
    GANNET_CHECK(E % slice_.size == 0, "expert parallelism over ", slice_.size, " ranks needs each MoE block's experts "
                 "divisible by it; block ", l, " has ", E);
  }
  // A row-parallel product's int8 inputs take their token scale from the whole row (the engine
  // all-reduces each row's maximum); int4 and asymmetric inputs have no such path yet.
  for (const auto& [name, a] : weights.activations)
    GANNET_CHECK(!a.quantized || (a.bits == 8 && !a.asymmetric), "tensor-parallel inference takes float inputs or "
                 "symmetric int8 inputs to quantized products; ", name, " takes ", a.bits, "-bit",
                 a.asymmetric ? " asymmetric" : "", " inputs");
  GANNET_CHECK(cfg_.n_head % slice_.size == 0, "tensor parallelism over ", slice_.size, " ranks needs n_head (",
               cfg_.n_head, ") divisible by it");
}

// Float matrices take the engine's format; a quantized model's quantized matrices keep theirs
// (packed for kernels/quant_matmul.h). A share of `cols` < in columns is whole groups, unpadded.
size_t EngineWeightBuilder::prepared_bytes(const io::QuantizedTensor* q, int64_t in, int64_t rows,
                                           int64_t cols) const {
  if (!q) return arena_bytes(wtype_, kernels::packed_size(ptype_, rows, cols));
  const int64_t padded = cols == in ? q->padded_in : cols;
  return arena_bytes(DType::u8, kernels::qpacked_bytes(q->bits, rows, padded, q->group, !q->symmetric()));
}

size_t EngineWeightBuilder::share_bytes(const std::string& name, int64_t out, int64_t in, int64_t rows,
                                        int64_t cols) const {
  return prepared_bytes(w_.find_quantized(name, {out, in}), in, rows, cols);
}

// A quantized expert tensor is one [E * out, in] matrix, and expert e packs its rows
// [e * out, (e + 1) * out) (or its share of them) on their own.
size_t EngineWeightBuilder::expert_bytes(const std::string& name, int64_t E, int64_t out, int64_t in, int64_t rows,
                                         int64_t cols) const {
  return prepared_bytes(w_.find_quantized(name, {E * out, in}), in, rows, cols);
}

size_t EngineWeightBuilder::head_bytes() const {
  const int64_t V = cfg_.vocab_size, Vl = slice_.size > 1 ? slice_.vocab_rows(V) : V;
  size_t bytes = share_bytes("wte.weight", V, C_, Vl, C_);
  if (w_.quantized.count("lm_head.weight")) bytes += share_bytes("lm_head.weight", V, C_, Vl, C_);
  return bytes;
}

size_t EngineWeightBuilder::resident_bytes(int64_t ctx) const {
  return arena_bytes(DType::f32, ctx * C_) + 2 * arena_bytes(DType::f32, C_);
}

size_t EngineWeightBuilder::layer_bytes(int64_t l) const {
  const int64_t C = C_, L = cfg_.n_layer, E = cfg_.moe.experts_at(l, L);
  const std::string h = "h." + std::to_string(l);
  const int64_t A = C / slice_.size, F = 4 * C / slice_.size;  // one rank: C and 4C
  size_t bytes = share_bytes(h + ".attn.c_attn.weight", 3 * C, C, 3 * A, C) +
                 share_bytes(h + ".attn.c_proj.weight", C, C, C, A) + arena_bytes(DType::f32, 3 * A) +
                 6 * arena_bytes(DType::f32, C);
  if (E == 0)  // the MLP's share: 4C/t hidden units
    return bytes + share_bytes(h + ".mlp.c_fc.weight", 4 * C, C, F, C) +
           share_bytes(h + ".mlp.c_proj.weight", C, 4 * C, C, F) + arena_bytes(DType::f32, F) +
           arena_bytes(DType::f32, C);
  if (cfg_.moe.use_residual)  // PR-MoE's dense MLP, whole on every rank
    bytes += share_bytes(h + ".mlp.c_fc.weight", 4 * C, C, 4 * C, C) + share_bytes(h + ".mlp.c_proj.weight", C, 4 * C, C, 4 * C) +
             arena_bytes(DType::f32, 4 * C) + arena_bytes(DType::f32, C);
  if (E > 0) {
    // The experts' blocks, each aligned (and the padding in front of the first): E/t whole ones,
    // or a 4C/t share of each of the E.
    const bool whole = slice_.whole_experts || slice_.size == 1;
    const int64_t Fe = whole ? 4 * C : F, held = whole ? E / slice_.size : E;
    const size_t expert = expert_bytes(h + ".moe.experts.c_fc.weight", E, 4 * C, C, Fe, C) +
                          expert_bytes(h + ".moe.experts.c_proj.weight", E, C, 4 * C, C, Fe) +
                          arena_bytes(DType::f32, Fe) + arena_bytes(DType::f32, C);
    bytes += arena_bytes(DType::f32, kernels::packed_size(kernels::PackedType::f32, E, C)) + kExpertAlign +
             held * ((expert + kExpertAlign - 1) / kExpertAlign * kExpertAlign);
    if (cfg_.moe.use_residual)
      bytes += arena_bytes(wtype_, kernels::packed_size(ptype_, 2, C)) + arena_bytes(DType::f32, 2);
  }
  return bytes;
}

Tensor EngineWeightBuilder::vector(WeightArena& a, const std::string& name, int64_t n) const {
  std::vector<float> v = to_f32(w_.at(name, {n}));
  Tensor t = a.take({n}, DType::f32);
  std::memcpy(t.raw(), v.data(), n * sizeof(float));
  return t;
}

Tensor EngineWeightBuilder::constant(WeightArena& a, int64_t n, float value) const {
  Tensor t = a.take({n}, DType::f32);
  std::fill(t.f32(), t.f32() + n, value);
  return t;
}

// A quantized matrix, packed for the integer kernels.
LinearWeight EngineWeightBuilder::quantized(WeightArena& a, const std::string& name, const io::QuantizedTensor& q,
                                            Tensor bias) const {
  Tensor t = a.take({kernels::qpacked_bytes(q.view())}, DType::u8);
  kernels::pack_quantized(q.view(), t.raw());
  return LinearWeight(t, q, std::move(bias), w_.activation(name));
}

// A float matrix packed for the decode kernel, in the engine's format or in f32.
LinearWeight EngineWeightBuilder::matrix_as(WeightArena& a, kernels::PackedType pt, const float* values, int64_t out,
                                            int64_t in, Tensor bias) const {
  const DType dt = pt == kernels::PackedType::f32 ? DType::f32 : DType::bf16;
  Tensor t = a.take({kernels::packed_size(pt, out, in)}, dt);
  kernels::pack_weights(pt, values, out, in, t.raw());
  return LinearWeight(t, out, in, std::move(bias));
}

// A LayerNorm's scale and shift folded into the float Linear that follows it:
//   W' = W diag(gamma),  b' = b + W beta,
// so that at run time only the normalization itself remains. A quantized Linear keeps its
// integers as quantized, so its LayerNorm applies gamma and beta itself (and its output is what
// the int8 activation quantization sees, as in ZeroQuant).
LinearWeight EngineWeightBuilder::normed(WeightArena& a, const std::string& p, const std::string& ln, int64_t out,
                                         Tensor& gamma, Tensor& beta, int64_t parts) const {
  const int64_t C = C_;
  const std::string name = p + ".weight";
  if (const io::QuantizedTensor* q = w_.find_quantized(name, {out, C})) {
    gamma = vector(a, ln + ".weight", C);
    beta = vector(a, ln + ".bias", C);
    if (slice_.size == 1) return quantized(a, name, *q, vector(a, p + ".bias", out));
    const std::vector<std::pair<int64_t, int64_t>> rows = slice_rows(out, parts);
    const int64_t n = (int64_t)rows.size() * (rows[0].second - rows[0].first);
    return quantized(a, name, q->gather_rows(rows, n), rows_of(a, p + ".bias", out, rows));
  }
  gamma = constant(a, C, 1.f);
  beta = constant(a, C, 0.f);
  std::vector<float> W = to_f32(w_.at(name, {out, C}));
  std::vector<float> b = to_f32(w_.at(p + ".bias", {out}));
  std::vector<float> g = to_f32(w_.at(ln + ".weight", {C}));
  std::vector<float> be = to_f32(w_.at(ln + ".bias", {C}));
  for (int64_t n = 0; n < out; ++n) {
    double s = b[n];
    float* row = W.data() + n * C;
    for (int64_t k = 0; k < C; ++k) {
      s += (double)row[k] * be[k];
      row[k] *= g[k];
    }
    b[n] = (float)s;
  }
  // A tensor slice keeps its rows of each of the `parts` blocks (folding is per row, so slicing
  // after it is slicing before it).
  int64_t rows = out;
  if (slice_.size > 1) {
    rows = 0;
    for (const auto& [r0, r1] : slice_rows(out, parts))
      for (int64_t src = r0; src < r1; ++src, ++rows) {
        std::copy(W.data() + src * C, W.data() + (src + 1) * C, W.data() + rows * C);  // rows <= src
        b[rows] = b[src];
      }
  }
  Tensor bt = a.take({rows}, DType::f32);
  std::copy(b.begin(), b.begin() + rows, bt.f32());
  return matrix_as(a, ptype_, W.data(), rows, C, bt);
}

LinearWeight EngineWeightBuilder::plain(WeightArena& a, const std::string& p, int64_t out, int64_t in) const {
  const std::string name = p + ".weight";
  if (const io::QuantizedTensor* q = w_.find_quantized(name, {out, in}))
    return quantized(a, name, *q, vector(a, p + ".bias", out));
  // The source as it is when f32 (widened when bf16): packing reads it, no copy needed.
  return matrix_as(a, ptype_, as_f32(w_.at(name, {out, in})).f32(), out, in, vector(a, p + ".bias", out));
}

std::vector<std::pair<int64_t, int64_t>> EngineWeightBuilder::slice_rows(int64_t out, int64_t parts) const {
  const int64_t block = out / parts, share = block / slice_.size;
  std::vector<std::pair<int64_t, int64_t>> rows;
  for (int64_t part = 0; part < parts; ++part)
    rows.emplace_back(part * block + slice_.rank * share, part * block + (slice_.rank + 1) * share);
  return rows;
}

Tensor EngineWeightBuilder::rows_of(WeightArena& a, const std::string& name, int64_t n,
                                    const std::vector<std::pair<int64_t, int64_t>>& rows) const {
  const std::vector<float> all = to_f32(w_.at(name, {n}));
  int64_t count = 0;
  for (const auto& [r0, r1] : rows) count += r1 - r0;
  Tensor t = a.take({count}, DType::f32);
  float* dst = t.f32();
  for (const auto& [r0, r1] : rows) dst = std::copy(all.begin() + r0, all.begin() + r1, dst);
  return t;
}

io::QuantizedTensor EngineWeightBuilder::column_share(const io::QuantizedTensor& q, const std::string& name, int64_t k0,
                                                     int64_t cols) const {
  GANNET_CHECK(cols % q.group == 0 && q.padded_in == q.in, "tensor parallelism over ", slice_.size, " ranks cuts ",
               name, "'s ", q.in, " inputs into ", cols, " columns each, which does not fall on its quantization "
               "groups of ", q.group);
  return q.column_slice(k0, k0 + cols);
}

LinearWeight EngineWeightBuilder::row_parallel(WeightArena& a, const std::string& p, int64_t out, int64_t in) const {
  if (slice_.size == 1) return plain(a, p, out, in);
  const int64_t share = in / slice_.size, k0 = slice_.rank * share;
  if (const io::QuantizedTensor* q = w_.find_quantized(p + ".weight", {out, in})) {
    Tensor bias = slice_.rank == 0 ? vector(a, p + ".bias", out) : constant(a, out, 0.f);
    return quantized(a, p + ".weight", column_share(*q, p + ".weight", k0, share), bias);
  }
  const Tensor W = as_f32(w_.at(p + ".weight", {out, in}));
  std::vector<float> Wl(out * share);
  for (int64_t n = 0; n < out; ++n) std::copy(W.f32() + n * in + k0, W.f32() + n * in + k0 + share, Wl.data() + n * share);
  Tensor bias = slice_.rank == 0 ? vector(a, p + ".bias", out) : constant(a, out, 0.f);
  return matrix_as(a, ptype_, Wl.data(), out, share, bias);
}

// An MoE block: ln_2 kept, the router in f32, one LinearWeight per expert from the slices of
// the [E, out, in] tensors: float ones packed in the engine's format, quantized ones (stored as
// one [E * out, in] matrix) packed from the expert's rows for the integer kernels, with the
// tensor's input quantization (int8 inputs are quantized token-wise by LinearWeight::apply from
// the gathered ln_2 rows, as for any product whose input is not a folded LayerNorm's output).
void EngineWeightBuilder::moe_block(WeightArena& a, size_t start, const std::string& h, int64_t E, Layer& y) const {
  const int64_t C = C_;
  y.experts = E;
  y.residual = cfg_.moe.use_residual;
  y.ln2_g = vector(a, h + ".ln_2.weight", C);
  y.ln2_b = vector(a, h + ".ln_2.bias", C);
  if (y.residual) {
    y.fc = plain(a, h + ".mlp.c_fc", 4 * C, C);
    y.out = plain(a, h + ".mlp.c_proj", C, 4 * C);
    y.coef = plain(a, h + ".moe.coefficient", 2, C);
  }
  y.gate = matrix_as(a, kernels::PackedType::f32, to_f32(w_.at(h + ".moe.gate.weight", {E, C})).data(), E, C, Tensor());
  const std::string p = h + ".moe.experts.";
  const std::vector<float> b1 = to_f32(w_.at(p + "c_fc.bias", {E, 4 * C}));
  const std::vector<float> b2 = to_f32(w_.at(p + "c_proj.bias", {E, C}));
  // The expert tensors [E, out, in] in f32 (undefined when quantized).
  auto source = [&](const std::string& name, int64_t out, int64_t in) {
    return w_.find_quantized(name, {E * out, in}) ? Tensor() : as_f32(w_.at(name, {E, out, in}));
  };
  const Tensor fc_all = source(p + "c_fc.weight", 4 * C, C), out_all = source(p + "c_proj.weight", C, 4 * C);
  a.align(kExpertAlign);
  y.experts_offset = (int64_t)(a.used() - start);
  y.expert_fc.resize(E);
  y.expert_out.resize(E);
  for (int64_t e = 0; e < E; ++e) {
    const size_t begin = a.used();
    add_expert(a, p, E, e, fc_all, out_all, b1, b2, y);
    if (a.used() == begin) continue;  // another rank's
    a.align(kExpertAlign);
    y.expert_stride = (int64_t)(a.used() - begin);
  }
}

void EngineWeightBuilder::add_expert(WeightArena& a, const std::string& p, int64_t E, int64_t e, const Tensor& fc_all,
                                     const Tensor& out_all, const std::vector<float>& b1, const std::vector<float>& b2,
                                     Layer& y) const {
  const int64_t C = C_, t = slice_.size, r = slice_.rank;
  const bool whole = slice_.whole_experts || t == 1;
  if (whole && e / (E / t) != r) return;
  // Hidden units [h0, h0 + Fe) of expert e: all of them, or this rank's share.
  const int64_t Fe = whole ? 4 * C : 4 * C / t, h0 = whole ? 0 : r * Fe;
  auto take = [&](const float* from, int64_t n) {
    Tensor v = a.take({n}, DType::f32);
    std::memcpy(v.raw(), from, n * sizeof(float));
    return v;
  };
  Tensor fc_bias = take(b1.data() + e * 4 * C + h0, Fe);
  Tensor out_bias = whole || r == 0 ? take(b2.data() + e * C, C) : constant(a, C, 0.f);
  const std::string fc = p + "c_fc.weight", out = p + "c_proj.weight";
  if (!fc_all.defined()) {
    y.expert_fc[e] = quantized(a, fc, w_.find_quantized(fc, {E * 4 * C, C})->row_slice(e * 4 * C + h0, e * 4 * C + h0 + Fe),
                               fc_bias);
  } else {
    y.expert_fc[e] = matrix_as(a, ptype_, fc_all.f32() + (e * 4 * C + h0) * C, Fe, C, fc_bias);
  }
  if (!out_all.defined()) {
    const io::QuantizedTensor q = w_.find_quantized(out, {E * C, 4 * C})->row_slice(e * C, (e + 1) * C);
    y.expert_out[e] = quantized(a, out, whole ? q : column_share(q, out, h0, Fe), out_bias);
    return;
  }
  std::vector<float> W(C * Fe);
  const float* src = out_all.f32() + e * C * 4 * C;
  for (int64_t n = 0; n < C; ++n) std::copy(src + n * 4 * C + h0, src + n * 4 * C + h0 + Fe, W.data() + n * Fe);
  y.expert_out[e] = matrix_as(a, ptype_, W.data(), C, Fe, out_bias);
}

HeadWeights EngineWeightBuilder::head(WeightArena& a) const {
  const int64_t V = cfg_.vocab_size;
  HeadWeights hw;
  if (slice_.size > 1) {  // rows [rank Vl, (rank + 1) Vl) of the table, zero rows past V
    const int64_t Vl = slice_.vocab_rows(V), r0 = slice_.rank * Vl, n = std::max<int64_t>(0, std::min(V, r0 + Vl) - r0);
    auto share = [&](const std::string& name) {
      return quantized(a, name, w_.find_quantized(name, {V, C_})->gather_rows({{r0, r0 + n}}, Vl), Tensor());
    };
    if (w_.find_quantized("wte.weight", {V, C_})) {
      hw.embed = hw.head = share("wte.weight");
      if (w_.quantized.count("lm_head.weight")) hw.head = share("lm_head.weight");
      return hw;
    }
    const Tensor all = as_f32(w_.at("wte.weight", {V, C_}));
    std::vector<float> rows(Vl * C_, 0.f);
    std::copy(all.f32() + r0 * C_, all.f32() + (r0 + n) * C_, rows.data());
    hw.embed = hw.head = matrix_as(a, ptype_, rows.data(), Vl, C_, Tensor());
    return hw;
  }
  if (const io::QuantizedTensor* q = w_.find_quantized("wte.weight", {V, C_}))
    hw.embed = quantized(a, "wte.weight", *q, Tensor());
  else
    hw.embed = matrix_as(a, ptype_, as_f32(w_.at("wte.weight", {V, C_})).f32(), V, C_, Tensor());
  hw.head = hw.embed;
  if (w_.quantized.count("lm_head.weight"))
    hw.head = quantized(a, "lm_head.weight", *w_.find_quantized("lm_head.weight", {V, C_}), Tensor());
  return hw;
}

ResidentTensors EngineWeightBuilder::resident(int64_t ctx, WeightArena& a) const {
  ResidentTensors r;
  std::vector<float> v = to_f32(w_.at("wpe.weight", {cfg_.n_ctx, C_}));
  r.wpe = a.take({ctx, C_}, DType::f32);
  std::memcpy(r.wpe.raw(), v.data(), ctx * C_ * sizeof(float));
  r.lnf_g = vector(a, "ln_f.weight", C_);
  r.lnf_b = vector(a, "ln_f.bias", C_);
  return r;
}

Layer EngineWeightBuilder::layer(int64_t l, WeightArena& a) const {
  const int64_t C = C_;
  const std::string h = "h." + std::to_string(l);
  const size_t start = a.used();
  Layer y;
  y.qkv = normed(a, h + ".attn.c_attn", h + ".ln_1", 3 * C, y.ln1_g, y.ln1_b, 3);
  y.proj = row_parallel(a, h + ".attn.c_proj", C, C);
  if (const int64_t E = cfg_.moe.experts_at(l, cfg_.n_layer); E > 0) {
    moe_block(a, start, h, E, y);
    return y;
  }
  y.fc = normed(a, h + ".mlp.c_fc", h + ".ln_2", 4 * C, y.ln2_g, y.ln2_b);
  y.out = row_parallel(a, h + ".mlp.c_proj", C, 4 * C);
  return y;
}

namespace {
void page_out(const Tensor& t) {
  if (!t.defined() || t.nbytes() == 0) return;
  static const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  const uintptr_t b = (uintptr_t)t.raw(), e = b + t.nbytes();
  const uintptr_t first = (b + page - 1) / page * page, last = e / page * page;
  if (last > first) madvise((void*)first, last - first, MADV_PAGEOUT);
}
}  // namespace

void release_source_pages(const io::GptWeights& w, const std::string& prefix, bool exact) {
  auto match = [&](const std::string& name) { return exact ? name == prefix : name.rfind(prefix, 0) == 0; };
  for (const auto& [name, t] : w.tensors)
    if (match(name)) page_out(t);
  for (const auto& [name, q] : w.quantized)
    if (match(name)) {
      page_out(q.q);
      page_out(q.scale);
      page_out(q.zero);
    }
}

}  // namespace gannet::infer
