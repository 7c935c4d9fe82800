#include "gannet/models/vlmoe.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/autograd/token_ops.h"
#include "gannet/core/limits.h"
#include "gannet/models/vlmoe_losses.h"

namespace gannet::models {

nn::MoeConfig VlMoeConfig::default_moe() {
  nn::MoeConfig m;
  m.num_experts = {4};
  m.expert_interval = 1;
  return m;
}

int64_t VlMoeConfig::experts_at(int64_t block) const {
  if (dense || !moe.enabled() || block >= lower_layers()) return 0;
  return moe.experts_at(block, lower_layers());
}

void VlMoeConfig::validate() const {
  GANNET_CHECK(image_size > 0 && patch_size > 0 && image_size % patch_size == 0, "vlmoe config: image_size ",
               image_size, " must be a positive multiple of patch_size ", patch_size);
  GANNET_CHECK(vocab_size > 0 && vocab_size <= kMaxVocabSize, "vlmoe config: vocab_size ", vocab_size,
               " is outside [1, ", kMaxVocabSize, "]");
  GANNET_CHECK(text_ctx >= 2 && text_ctx <= kMaxContext, "vlmoe config: text_ctx ", text_ctx,
               " must hold [CLS] and [SEP] and be at most ", kMaxContext);
  GANNET_CHECK(n_layer > 0 && n_layer <= kMaxLayers, "vlmoe config: n_layer ", n_layer, " is outside [1, ",
               kMaxLayers, "]");
  GANNET_CHECK(n_vl_layer >= 0 && n_vl_layer <= n_layer, "vlmoe config: n_vl_layer ", n_vl_layer,
               " is outside [0, n_layer = ", n_layer, "]");
  GANNET_CHECK(n_head > 0 && n_embd > 0 && n_embd <= kMaxEmbedding && n_embd % n_head == 0, "vlmoe config: n_embd ",
               n_embd, " must be positive, at most ", kMaxEmbedding, " and divisible by n_head ", n_head);
  GANNET_CHECK(proj_dim > 0 && proj_dim <= kMaxEmbedding, "vlmoe config: proj_dim ", proj_dim, " is outside [1, ",
               kMaxEmbedding, "]");
  GANNET_CHECK(std::isfinite(layernorm_eps) && layernorm_eps > 0.f, "vlmoe config: layernorm_eps must be positive");
  if (!dense && moe.enabled() && lower_layers() > 0) moe.validate(lower_layers());
}

VlMoeFlops active_flops_per_token(const VlMoeConfig& c) {
  const int64_t C = c.n_embd, mlp = 2 * (C * 4 * C + 4 * C * C);  // two matrices, 2 FLOPs a multiply-add
  VlMoeFlops f;
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const int64_t experts = c.experts_at(i);
    if (experts == 0) {
      f.ffn += mlp;
      continue;
    }
    // Top-k runs k experts per token; expert choice, k per token on average at capacity factor 1.
    f.ffn += c.moe.k * mlp + (c.moe.use_residual ? mlp : 0);
    f.router += 2 * experts * C + (c.moe.use_residual ? 2 * 2 * C : 0);
  }
  return f;
}

// Row indices into the [B * (I + T), C] hidden states.
struct VlMoe::Rows {
  int64_t B = 0, I = 0, T = 0;
  Tensor image;      // every image row (all are real)
  Tensor text;       // every text row, padding included
  Tensor text_real;  // the real text rows: the only ones the text FFNs see
  Tensor key_mask;   // u8 [B, I + T]; undefined when every token is real
  int64_t length() const { return I + T; }
};

namespace {
Tensor i32_rows(const std::vector<int32_t>& rows) {
  Tensor t = Tensor::empty({(int64_t)rows.size()}, DType::i32);
  std::copy(rows.begin(), rows.end(), t.data<int32_t>());
  return t;
}
}  // namespace

VlMoe::Layer VlMoe::make_layer(int64_t index) const {
  const int64_t C = config_.n_embd;
  Layer l;
  l.ln_1 = nn::LayerNorm(C, config_.layernorm_eps);
  l.ln_2 = nn::LayerNorm(C, config_.layernorm_eps);
  l.attn = nn::Attention(C, config_.n_head);
  l.top = index >= config_.lower_layers();
  const int64_t experts = config_.experts_at(index);
  if (l.top) {
    l.vl_mlp = nn::Mlp(C);
  } else if (experts > 0) {
    l.v_moe.emplace(config_.moe, index, C, experts);
    l.t_moe.emplace(config_.moe, index, C, experts);
  }
  // A dense lower block, and PR-MoE's dense half beside the experts.
  if (!l.top && (experts == 0 || config_.moe.use_residual)) {
    l.v_mlp = nn::Mlp(C);
    l.t_mlp = nn::Mlp(C);
  }
  return l;
}

VlMoe::VlMoe(const VlMoeConfig& config) : config_(config) {
  config_.validate();
  const int64_t C = config_.n_embd, p = config_.patch_size;
  patch_ = nn::Linear(p * p, C);
  patch_.collect("img.patch", params_);
  image_wpe_ = nn::make_param({config_.image_tokens(), C});
  text_wte_ = nn::make_param({config_.vocab_size, C});
  text_wpe_ = nn::make_param({config_.text_ctx, C});
  params_.push_back({"img.wpe.weight", image_wpe_, true});
  params_.push_back({"txt.wte.weight", text_wte_, true});
  params_.push_back({"txt.wpe.weight", text_wpe_, true});
  for (int64_t i = 0; i < config_.n_layer; ++i) {
    layers_.push_back(make_layer(i));
    const Layer& l = layers_.back();
    const std::string prefix = "h." + std::to_string(i);
    l.ln_1.collect(prefix + ".ln_1", params_);
    l.attn.collect(prefix + ".attn", params_);
    l.ln_2.collect(prefix + ".ln_2", params_);
    if (l.top) l.vl_mlp.collect(prefix + ".vl_mlp", params_);
    if (l.v_moe) l.v_moe->collect(prefix + ".v_moe", params_);
    if (l.t_moe) l.t_moe->collect(prefix + ".t_moe", params_);
    if (l.v_mlp.c_fc.weight.defined()) {
      l.v_mlp.collect(prefix + ".v_mlp", params_);
      l.t_mlp.collect(prefix + ".t_mlp", params_);
    }
  }
  ln_f_ = nn::LayerNorm(C, config_.layernorm_eps);
  ln_f_.collect("ln_f", params_);
  image_proj_ = nn::Linear(C, config_.proj_dim, /*with_bias=*/false);
  text_proj_ = nn::Linear(C, config_.proj_dim, /*with_bias=*/false);
  image_proj_.collect("itc.image_proj", params_);
  text_proj_.collect("itc.text_proj", params_);
  logit_scale_ = nn::make_param({1});
  params_.push_back({"itc.logit_scale", logit_scale_, false});
  if (config_.itm_head) {
    itm_head_ = nn::Linear(C, 2);
    itm_head_.collect("itm.head", params_);
  }
  if (config_.mlm_head) {
    mlm_head_ = nn::Linear(C, config_.vocab_size);
    mlm_head_.collect("mlm.head", params_);
  }
  if (config_.mim_head) {
    mask_token_ = nn::make_param({1, C});
    params_.push_back({"img.mask_token", mask_token_, true});
    mim_head_ = nn::Linear(C, p * p);
    mim_head_.collect("mim.head", params_);
  }
}

nn::Var VlMoe::itm_logits(const nn::Var& fused_pooled) const {
  GANNET_CHECK(config_.itm_head, "vlmoe: the model has no ITM head (itm_head is false)");
  return itm_head_.forward(fused_pooled);
}

nn::Var VlMoe::mlm_logits(const nn::Var& text_rows) const {
  GANNET_CHECK(config_.mlm_head, "vlmoe: the model has no MLM head (mlm_head is false)");
  return mlm_head_.forward(text_rows);
}

nn::Var VlMoe::mim_pixels(const nn::Var& image_rows) const {
  GANNET_CHECK(config_.mim_head, "vlmoe: the model has no MIM head (mim_head is false)");
  return mim_head_.forward(image_rows);
}

void VlMoe::init(uint64_t seed) {
  Rng rng(seed);
  const float std = 0.02f, proj_std = 0.02f / std::sqrt(2.f * (float)config_.n_layer);  // GPT-2's
  patch_.init(rng, std);
  nn::init_normal(image_wpe_, rng, 0.01f);
  nn::init_normal(text_wte_, rng, std);
  nn::init_normal(text_wpe_, rng, 0.01f);
  auto init_mlp = [&](nn::Mlp& m) {
    if (!m.c_fc.weight.defined()) return;
    m.c_fc.init(rng, std);
    m.c_proj.init(rng, proj_std);
  };
  for (Layer& l : layers_) {
    l.attn.c_attn.init(rng, std);
    l.attn.c_proj.init(rng, proj_std);
    for (nn::Mlp* m : {&l.v_mlp, &l.t_mlp, &l.vl_mlp}) init_mlp(*m);
    if (l.v_moe) l.v_moe->init(rng, std, proj_std);
    if (l.t_moe) l.t_moe->init(rng, std, proj_std);
  }
  image_proj_.init(rng, std);
  text_proj_.init(rng, std);
  nn::init_constant(logit_scale_, kInitialLogitScale);
  if (config_.itm_head) itm_head_.init(rng, std);
  if (config_.mlm_head) mlm_head_.init(rng, std);
  if (config_.mim_head) {
    nn::init_normal(mask_token_, rng, std);
    mim_head_.init(rng, std);
  }
}

VlMoe::Rows VlMoe::rows_of(const VlMoeInput& in) const {
  const bool image = in.images.defined(), text = in.text.defined();
  GANNET_CHECK(image || text, "vlmoe: no images and no text");
  Rows r;
  const int64_t S = config_.image_size;
  if (image) {
    GANNET_CHECK(in.images.dtype() == DType::u8 && in.images.ndim() == 3 && in.images.dim(1) == S &&
                     in.images.dim(2) == S,
                 "vlmoe: images must be u8 [B, ", S, ", ", S, "], got ", in.images.describe());
    r.B = in.images.dim(0);
    r.I = config_.image_tokens();
  }
  if (text) {
    GANNET_CHECK(in.text.dtype() == DType::i32 && in.text.ndim() == 2, "vlmoe: text must be i32 [B, T], got ",
                 in.text.describe());
    GANNET_CHECK(in.text.dim(1) <= config_.text_ctx, "vlmoe: text of ", in.text.dim(1),
                 " tokens is longer than text_ctx ", config_.text_ctx);
    GANNET_CHECK(!image || in.text.dim(0) == r.B, "vlmoe: ", r.B, " images but ", in.text.dim(0), " texts");
    GANNET_CHECK(in.text_mask.dtype() == DType::u8 && in.text_mask.shape() == in.text.shape(), "vlmoe: text mask ",
                 in.text_mask.describe(), " does not match text ", in.text.describe());
    r.B = in.text.dim(0);
    r.T = in.text.dim(1);
  }
  const int64_t L = r.length();
  std::vector<int32_t> image_rows, text_rows, real_rows;
  Tensor key_mask = Tensor::zeros({r.B, L}, DType::u8);
  bool padded = false;
  for (int64_t b = 0; b < r.B; ++b) {
    for (int64_t i = 0; i < r.I; ++i) image_rows.push_back((int32_t)(b * L + i));
    std::fill_n(key_mask.data<uint8_t>() + b * L, r.I, uint8_t{1});
    for (int64_t t = 0; t < r.T; ++t) {
      const int32_t row = (int32_t)(b * L + r.I + t);
      const uint8_t real = in.text_mask.data<uint8_t>()[b * r.T + t] != 0;
      text_rows.push_back(row);
      if (real) real_rows.push_back(row);
      key_mask.data<uint8_t>()[b * L + r.I + t] = real;
      padded |= !real;
    }
  }
  r.image = i32_rows(image_rows);
  r.text = i32_rows(text_rows);
  r.text_real = i32_rows(real_rows);
  if (padded) r.key_mask = key_mask;
  return r;
}

// The patches' Linear outputs [B * I, C] with each masked patch's row replaced by img.mask_token.
nn::Var VlMoe::mask_patches(const nn::Var& patches, const Tensor& patch_mask) const {
  const int64_t B = patch_mask.dim(0), P = config_.patches(), I = config_.image_tokens();
  std::vector<int32_t> rows;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < P; ++k)
      if (patch_mask.data<uint8_t>()[b * P + k]) rows.push_back((int32_t)(b * I + 1 + k));
  if (rows.empty()) return patches;
  // The mask token looked up once per masked row: an "embedding" of a one-row table.
  const Tensor zeros = Tensor::zeros({1, (int64_t)rows.size()}, DType::i32);
  return autograd::scatter_rows(patches, autograd::embedding(zeros, mask_token_, {}), i32_rows(rows));
}

nn::Var VlMoe::embed_images(const Tensor& images, const Tensor& patch_mask) const {
  // [B, S, S] u8 -> [B * (1 + P), p * p] in [0, 1], row 0 of each image all zeros (its [CLS]).
  const int64_t B = images.dim(0), S = config_.image_size, p = config_.patch_size, side = S / p;
  const int64_t I = config_.image_tokens();
  Tensor patches = Tensor::zeros({B * I, p * p});
  const uint8_t* px = images.data<uint8_t>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < side * side; ++k) {
      float* row = patches.f32() + (b * I + 1 + k) * p * p;
      const int64_t y0 = (k / side) * p, x0 = (k % side) * p;
      for (int64_t y = 0; y < p; ++y)
        for (int64_t x = 0; x < p; ++x) row[y * p + x] = px[(b * S + y0 + y) * S + x0 + x] * (1.f / 255.f);
    }
  // Positions through the embedding op: a "token" table of the positions, looked up by index.
  Tensor positions = Tensor::empty({B, I}, DType::i32);
  for (int64_t i = 0; i < B * I; ++i) positions.data<int32_t>()[i] = (int32_t)(i % I);
  nn::Var x = patch_.forward(nn::Var(patches));
  if (patch_mask.defined()) x = mask_patches(x, patch_mask);
  return autograd::add(x, autograd::embedding(positions, image_wpe_, {}));
}

nn::Var VlMoe::embed(const VlMoeInput& in, const Rows& r, const Tensor& patch_mask) const {
  nn::Var image = r.I ? embed_images(in.images, patch_mask) : nn::Var();
  nn::Var text = r.T ? autograd::embedding(in.text, text_wte_, text_wpe_) : nn::Var();
  if (!text.defined()) return image;
  if (!image.defined()) return text;
  nn::Var x(Tensor::zeros({r.B * r.length(), config_.n_embd}));
  return autograd::scatter_rows(autograd::scatter_rows(x, image, r.image), text, r.text);
}

nn::Var VlMoe::modality_ffn(const Layer& l, bool image, const nn::Var& a, nn::MoePass& pass) const {
  if (l.top) return l.vl_mlp.forward(a);
  const std::optional<nn::Moe>& moe = image ? l.v_moe : l.t_moe;
  const nn::Mlp& mlp = image ? l.v_mlp : l.t_mlp;
  if (!moe) return mlp.forward(a);
  return moe->forward(a, moe->config.use_residual ? mlp.forward(a) : nn::Var(), pass);
}

nn::Var VlMoe::layer_forward(const Layer& l, const nn::Var& x, const Rows& r, VlMoeOutput& out) const {
  nn::Var h = autograd::add(x, l.attn.forward(l.ln_1.forward(x), r.B, r.length(), /*causal=*/false, r.key_mask));
  nn::Var a = l.ln_2.forward(h);
  if (l.top) return autograd::add(h, l.vl_mlp.forward(a));
  // Each modality's real rows through its own FFN; text padding gets none (nobody attends to it).
  nn::Var ffn(Tensor::zeros(h.shape()));
  if (r.I) ffn = autograd::scatter_rows(ffn, modality_ffn(l, true, autograd::gather_rows(a, r.image), out.image_moe),
                                        r.image);
  if (r.text_real.numel())
    ffn = autograd::scatter_rows(
        ffn, modality_ffn(l, false, autograd::gather_rows(a, r.text_real), out.text_moe), r.text_real);
  return autograd::add(h, ffn);
}

VlMoeOutput VlMoe::forward(const VlMoeInput& input, uint64_t moe_seed, bool keep_routing) const {
  return run(input, Tensor(), moe_seed, keep_routing);
}

VlMoeOutput VlMoe::forward_masked(const VlMoeInput& input, const Tensor& patch_mask, uint64_t moe_seed) const {
  GANNET_CHECK(config_.mim_head, "vlmoe: the model has no mask token (mim_head is false)");
  GANNET_CHECK(input.images.defined(), "vlmoe: masked patches without images");
  GANNET_CHECK(patch_mask.dtype() == DType::u8 && patch_mask.ndim() == 2 && patch_mask.dim(0) == input.images.dim(0) &&
                   patch_mask.dim(1) == config_.patches(),
               "vlmoe: patch mask ", patch_mask.describe(), " is not u8 [", input.images.dim(0), ", ",
               config_.patches(), "]");
  return run(input, patch_mask, moe_seed, false);
}

VlMoeOutput VlMoe::run(const VlMoeInput& input, const Tensor& patch_mask, uint64_t moe_seed, bool keep_routing) const {
  const Rows r = rows_of(input);
  VlMoeOutput out;
  out.image_tokens = r.I;
  out.text_tokens = r.T;
  for (nn::MoePass* pass : {&out.image_moe, &out.text_moe}) {
    pass->training = autograd::grad_enabled();
    pass->keep_routing = keep_routing;
  }
  out.image_moe.seed = moe_seed;
  out.text_moe.seed = moe_seed ^ 0x5851F42D4C957F2Dull;  // a stream of its own for the text experts
  nn::Var x = embed(input, r, patch_mask);
  for (const Layer& l : layers_) x = layer_forward(l, x, r, out);
  out.hidden = ln_f_.forward(x);
  std::vector<int32_t> image_cls, text_cls;
  for (int64_t b = 0; b < r.B; ++b) {
    image_cls.push_back((int32_t)(b * r.length()));
    text_cls.push_back((int32_t)(b * r.length() + r.I));
  }
  if (r.I) out.image_pooled = autograd::gather_rows(out.hidden, i32_rows(image_cls));
  if (r.T) out.text_pooled = autograd::gather_rows(out.hidden, i32_rows(text_cls));
  return out;
}

}  // namespace gannet::models
