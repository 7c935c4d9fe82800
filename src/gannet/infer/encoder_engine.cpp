#include "gannet/infer/encoder_engine.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "gannet/core/error.h"
#include "gannet/core/parallel_errors.h"
#include "gannet/kernels/bias.h"
#include "gannet/kernels/attention.h"
#include "gannet/kernels/layernorm.h"

namespace gannet::infer {

namespace {
// f32 [out, in] packed for the float kernels.
LinearWeight f32_matrix(const Tensor& W, Tensor bias) {
  const Tensor w = as_f32(W);
  Tensor packed = Tensor::empty({kernels::packed_size(kernels::PackedType::f32, w.dim(0), w.dim(1))});
  kernels::pack_weights(kernels::PackedType::f32, w.f32(), w.dim(0), w.dim(1), packed.raw());
  return LinearWeight(packed, w.dim(0), w.dim(1), std::move(bias));
}

std::map<std::string, Tensor> parameters_of(const models::Encoder& model) {
  std::map<std::string, Tensor> out;
  for (const nn::Parameter& p : model.parameters()) out.emplace(p.name, as_f32(p.var.value()).clone());
  return out;
}
}  // namespace

// Assembles an engine from its dense tensors by name and a maker of its low-bit-able matrices
// (the block products and the embedding tables) from a name and a bias.
struct EncoderEngineBuilder {
  static EncoderEngine build(const models::EncoderConfig& c, const std::function<Tensor(const std::string&)>& dense,
                             const std::function<LinearWeight(const std::string&, Tensor)>& matrix) {
    EncoderEngine e;
    e.config_ = c;
    e.wte_ = matrix("wte.weight", Tensor());
    e.wpe_ = matrix("wpe.weight", Tensor());
    for (int64_t l = 0; l < c.n_layer; ++l) {
      const std::string h = "h." + std::to_string(l) + ".";
      EncoderEngine::Layer L;
      L.ln1_g = dense(h + "ln_1.weight");
      L.ln1_b = dense(h + "ln_1.bias");
      L.ln2_g = dense(h + "ln_2.weight");
      L.ln2_b = dense(h + "ln_2.bias");
      for (auto [w, name] : {std::pair{&L.qkv, "attn.c_attn"}, std::pair{&L.proj, "attn.c_proj"},
                             std::pair{&L.fc, "mlp.c_fc"}, std::pair{&L.out, "mlp.c_proj"}})
        *w = matrix(h + name + ".weight", dense(h + name + ".bias"));
      e.layers_.push_back(std::move(L));
    }
    e.lnf_g_ = dense("ln_f.weight");
    e.lnf_b_ = dense("ln_f.bias");
    e.classifier_ = f32_matrix(dense("classifier.weight"), dense("classifier.bias"));
    return e;
  }
};

namespace {
void require_classifier(const models::EncoderConfig& c) {
  GANNET_CHECK(c.num_classes >= 2, "encoder engine: the model has no classification head");
}
}  // namespace

EncoderEngine EncoderEngine::f32(const models::Encoder& model, bool fake_int8_inputs) {
  return f32(model, fake_int8_inputs ? io::ActivationQuant{true} : io::ActivationQuant{});
}

EncoderEngine EncoderEngine::f32(const models::Encoder& model, const io::ActivationQuant& fake_inputs) {
  require_classifier(model.config());
  const std::map<std::string, Tensor> p = parameters_of(model);
  EncoderEngine e = EncoderEngineBuilder::build(
      model.config(), [&](const std::string& n) { return p.at(n); },
      [&](const std::string& n, Tensor bias) { return f32_matrix(p.at(n), std::move(bias)); });
  e.fake_inputs_ = fake_inputs;
  return e;
}

EncoderEngine EncoderEngine::quantized(const models::Encoder& model, const compress::WeightQuantSpec& spec,
                                       const io::ActivationQuant& inputs) {
  require_classifier(model.config());
  const std::map<std::string, Tensor> p = parameters_of(model);
  return EncoderEngineBuilder::build(
      model.config(), [&](const std::string& n) { return p.at(n); },
      [&](const std::string& n, Tensor bias) {
        if (io::is_embedding_table(n)) return f32_matrix(p.at(n), std::move(bias));
        const io::QuantizedTensor q = compress::quantize_weights(p.at(n), spec);
        Tensor packed = Tensor::empty({kernels::qpacked_bytes(q.view())}, DType::u8);
        kernels::pack_quantized(q.view(), packed.raw());
        return LinearWeight(packed, q, std::move(bias), inputs);
      });
}

EncoderEngine EncoderEngine::low_bit(const io::LowBitEncoder& model) {
  model.validate("encoder engine: packed low-bit encoder");
  return EncoderEngineBuilder::build(
      model.config, [&](const std::string& n) { return model.dense.at(n); },
      [&](const std::string& n, Tensor bias) { return LinearWeight(model.low_bit.at(n), std::move(bias)); });
}

EncoderEngine EncoderEngine::nm_sparse(const io::NmSparseEncoder& model) {
  model.validate("encoder engine: packed N:M sparse encoder");
  return EncoderEngineBuilder::build(
      model.config, [&](const std::string& n) { return model.dense.at(n); },
      [&](const std::string& n, Tensor bias) {
        if (io::is_embedding_table(n)) return f32_matrix(model.dense.at(n), std::move(bias));
        if (model.sparse.count(n)) return LinearWeight(model.sparse.at(n), std::move(bias), model.input(n));
        const io::QuantizedTensor& q = model.quantized.at(n);
        Tensor packed = Tensor::empty({kernels::qpacked_bytes(q.view())}, DType::u8);
        kernels::pack_quantized(q.view(), packed.raw());
        return LinearWeight(packed, q, std::move(bias), model.input(n));
      });
}

std::string EncoderEngine::describe() const { return layers_.front().qkv.describe(); }

int64_t EncoderEngine::weight_bytes() const {
  int64_t bytes = classifier_.weight_bytes() + 4 * (config_.num_classes + 2 * config_.n_embd);
  for (const Layer& L : layers_) {
    for (const LinearWeight* w : {&L.qkv, &L.proj, &L.fc, &L.out})
      bytes += w->weight_bytes() + 4 * w->out_features();  // and its f32 bias
    bytes += 4 * 4 * config_.n_embd;                        // two LayerNorms
  }
  return bytes;
}

void EncoderEngine::check_inputs(const Tensor& tokens, const Tensor& mask) const {
  GANNET_CHECK(tokens.defined() && tokens.dtype() == DType::i32 && tokens.ndim() == 2, "encoder engine: tokens must be i32 [B, T], got ",
               tokens.defined() ? tokens.describe() : std::string("none"));
  GANNET_CHECK(tokens.dim(1) >= 1 && tokens.dim(1) <= config_.n_ctx, "encoder engine: ", tokens.dim(1),
               " tokens per sequence, outside [1, n_ctx ", config_.n_ctx, "]");
  GANNET_CHECK(mask.defined() && mask.dtype() == DType::u8 && mask.shape() == tokens.shape(),
               "encoder engine: mask must be u8 ", shape_str(tokens.shape()), ", got ",
               mask.defined() ? mask.describe() : std::string("none"));
  const int32_t* t = tokens.data<int32_t>();
  for (int64_t i = 0; i < tokens.numel(); ++i)
    GANNET_CHECK(t[i] >= 0 && t[i] < config_.vocab_size, "encoder engine: token id ", t[i], " at flat position ", i,
                 " is outside the vocabulary [0, ", config_.vocab_size, ")");
}

void EncoderEngine::prepare(int64_t n, int64_t B, int64_t T) {
  const int64_t C = config_.n_embd;
  n_ = n;
  x_.resize(n * C);
  xn_.resize(std::max(n, B) * C);
  qkv_.resize(n * 3 * C);
  att_.resize(n * C);
  hid_.resize(n * 4 * C);
  lse_.resize(config_.n_head * T);
  int64_t need = classifier_.scratch_floats(B);
  for (const Layer& L : layers_)
    for (const LinearWeight* w : {&L.qkv, &L.proj, &L.fc, &L.out}) need = std::max(need, w->scratch_floats(n));
  if ((int64_t)scratch_.size() < need) scratch_.resize(need);
}

void EncoderEngine::embed(const std::vector<int32_t>& tok, const std::vector<int32_t>& pos) {
  const int64_t C = config_.n_embd;
  ParallelErrors errors;
#pragma omp parallel for schedule(static) if (n_ > 8)
  for (int64_t i = 0; i < n_; ++i) {
    errors.run([&] {
      float* xi = x_.data() + i * C;
      float* pe = xn_.data() + i * C;
      wte_.row(tok[i], xi);
      wpe_.row(pos[i], pe);
      for (int64_t c = 0; c < C; ++c) xi[c] += pe[c];
    });
  }
  errors.rethrow();
}

void EncoderEngine::attention(const std::vector<int64_t>& start, const std::vector<int64_t>& count) {
  const int64_t C = config_.n_embd, H = config_.n_head;
  // A sequence's real rows are contiguous: the fused kernel runs on them as one unmasked sequence.
  for (size_t b = 0; b < start.size(); ++b)
    if (count[b] > 0)
      kernels::attention_forward(qkv_.data() + start[b] * 3 * C, att_.data() + start[b] * C, lse_.data(), 1,
                                 count[b], C, H, /*causal=*/false, nullptr);
}

void EncoderEngine::fake_quantize(float* X, int64_t rows, int64_t cols) const {
  if (fake_inputs_.quantized) compress::fake_quantize_activations(X, rows, cols, fake_inputs_, X);
}

void EncoderEngine::norm_then(const LinearWeight& w, const Tensor& gamma, const Tensor& beta, float* y, int64_t ldy,
                              kernels::Epilogue e) {
  const int64_t C = config_.n_embd;
  const float eps = config_.layernorm_eps;
  if (fused_ && !fake_inputs_.quantized && takes_fused_inputs(w))
    return w.apply_quantized(layernorm_quantized(w, x_.data(), n_, C, gamma.f32(), beta.f32(), eps, xq_), y, ldy, e);
  kernels::layernorm_forward(x_.data(), gamma.f32(), beta.f32(), xn_.data(), nullptr, nullptr, n_, C, eps);
  fake_quantize(xn_.data(), n_, C);
  w.apply(xn_.data(), C, n_, y, ldy, e, scratch_.data());
}

void EncoderEngine::mlp(const Layer& L) {
  const int64_t C = config_.n_embd;
  if (!fused_ || fake_inputs_.quantized || !takes_fused_inputs(L.fc) || !takes_fused_inputs(L.out)) {
    norm_then(L.fc, L.ln2_g, L.ln2_b, hid_.data(), 4 * C, kernels::Epilogue::gelu);
    fake_quantize(hid_.data(), n_, 4 * C);
    return L.out.apply(hid_.data(), 4 * C, n_, x_.data(), C, kernels::Epilogue::accumulate, scratch_.data());
  }
  // c_fc's kernel quantizes its GELU output for c_proj (ZeroQuant's fusion).
  hq_.reserve(n_, L.out.packed_in());
  const kernels::QuantizedRows in =
      layernorm_quantized(L.fc, x_.data(), n_, C, L.ln2_g.f32(), L.ln2_b.f32(), config_.layernorm_eps, xq_);
  const kernels::QuantizedRows h =
      L.fc.apply_quantized_gelu(in, hid_.data(), 4 * C, L.out, hq_.q.data(), hq_.scale.data(), hq_.zero.data());
  L.out.apply_quantized(h, x_.data(), C, kernels::Epilogue::accumulate);
}

void EncoderEngine::block(const Layer& L, const std::vector<int64_t>& start, const std::vector<int64_t>& count) {
  const int64_t C = config_.n_embd;
  norm_then(L.qkv, L.ln1_g, L.ln1_b, qkv_.data(), 3 * C, kernels::Epilogue::store);
  attention(start, count);
  fake_quantize(att_.data(), n_, C);
  L.proj.apply(att_.data(), C, n_, x_.data(), C, kernels::Epilogue::accumulate, scratch_.data());
  mlp(L);
}

Tensor EncoderEngine::logits(const Tensor& tokens, const Tensor& mask) {
  check_inputs(tokens, mask);
  const int64_t B = tokens.dim(0), T = tokens.dim(1), C = config_.n_embd;
  const int32_t* tk = tokens.data<int32_t>();
  const uint8_t* m = mask.data<uint8_t>();
  // The real tokens, sequence by sequence.
  std::vector<int32_t> tok, pos;
  std::vector<int64_t> start(B), count(B);
  for (int64_t b = 0; b < B; ++b) {
    start[b] = (int64_t)tok.size();
    for (int64_t t = 0; t < T; ++t)
      if (m[b * T + t]) {
        tok.push_back(tk[b * T + t]);
        pos.push_back((int32_t)t);
      }
    count[b] = (int64_t)tok.size() - start[b];
  }
  prepare((int64_t)tok.size(), B, T);
  if (n_ > 0) {
    embed(tok, pos);
    for (const Layer& L : layers_) block(L, start, count);
    kernels::layernorm_forward(x_.data(), lnf_g_.f32(), lnf_b_.f32(), x_.data(), nullptr, nullptr, n_, C,
                               config_.layernorm_eps);
  }
  // Mean pooling over each sequence's real tokens (as autograd::masked_mean_pool: summed in
  // order, then scaled by 1 / count), into xn_'s first B rows.
  float* pooled = xn_.data();
  std::fill(pooled, pooled + B * C, 0.f);
  for (int64_t b = 0; b < B; ++b) {
    float* out = pooled + b * C;
    for (int64_t j = 0; j < count[b]; ++j) kernels::add_inplace(out, x_.data() + (start[b] + j) * C, C);
    if (count[b] == 0) continue;
    kernels::scale_inplace(out, 1.f / (float)count[b], C);
  }
  Tensor out = Tensor::empty({B, config_.num_classes});
  classifier_.apply(pooled, C, B, out.f32(), config_.num_classes, kernels::Epilogue::store, scratch_.data());
  return out;
}

}  // namespace gannet::infer
