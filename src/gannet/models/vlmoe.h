// VL-MoE (arXiv 2303.07226): one transformer over image patches and text tokens. Self-attention is
// shared by all tokens; the feed-forward layer is modality-specific in the lower blocks (image
// tokens go to a V-MoE layer, text tokens to a T-MoE layer: one nn::Moe per modality per block, with
// all its routing options and balance losses) and one dense VL-FFN shared by both in the top blocks.
//
// Embeddings: an image u8 [S, S] (pixels / 255) is cut into P = (S / p)^2 patches of p x p, each a
// row of p*p values through a Linear to C; a row of zeros stands for the image [CLS] in front (its
// vector is the Linear's bias plus its position). Learned positions for the 1 + P image tokens.
// Text: token + learned position embeddings over data/glyph_text_tokenizer.h's ids, [CLS] first.
// In fusion, a sequence is the image's 1 + P tokens followed by the text's.
//
// The dense counterpart (`dense`): every lower block's V-MoE/T-MoE becomes a dense V-FFN/T-FFN of
// the experts' width 4C, so with top-1 routing each token runs the same FFN FLOPs in both models.
//
// Parameter names: img.patch.{weight,bias}, img.wpe.weight, txt.wte.weight, txt.wpe.weight, then per
// block h.<i>.{ln_1,attn,ln_2}.* and h.<i>.{v_moe,t_moe}.* (MoE) or h.<i>.{v_mlp,t_mlp}.* (dense
// lower) or h.<i>.vl_mlp.* (top), then ln_f.*, itc.image_proj.weight, itc.text_proj.weight,
// itc.logit_scale, and with itm_head itm.head.{weight,bias}, with mlm_head mlm.head.{weight,bias}, with
// mim_head img.mask_token and mim.head.{weight,bias} (these last, in that order).
#pragma once
#include <vector>

#include "gannet/nn/block.h"
#include "gannet/nn/moe.h"

namespace gannet::models {

struct VlMoeConfig {
  int64_t image_size = 16;  // images are [S, S]: 16 for glyphs, 28 for Fashion-MNIST
  int64_t patch_size = 4;
  int64_t vocab_size = 1024;
  int64_t text_ctx = 32;  // the longest text, [CLS] and [SEP] included
  int64_t n_layer = 4;
  int64_t n_vl_layer = 1;  // the top blocks, with the shared dense VL-FFN
  int64_t n_head = 4;
  int64_t n_embd = 128;
  int64_t proj_dim = 64;  // ITC's projections of the pooled vectors
  float layernorm_eps = 1e-5f;
  bool dense = false;  // the dense counterpart: V-FFN and T-FFN in the lower blocks
  bool itm_head = false;  // an image-text matching head (itm.head, [2, C]) on the fused image [CLS]
  bool mlm_head = false;  // a masked-language-modelling head (mlm.head, [vocab_size, C]) on fused text rows
  // Masked image modelling: a learned mask embedding (img.mask_token, [1, C]) that stands for a masked
  // patch's Linear output, and a head (mim.head, [p*p, C]) predicting a patch's pixels from its row.
  bool mim_head = false;
  // Options of the V-MoE and T-MoE layers (the same for both), applied to the n_layer - n_vl_layer
  // lower blocks: moe.layers and moe.expert_interval count within them, and a lower block without an
  // MoE layer has a dense V-FFN and T-FFN. Default: every lower block, 4 experts, top-1.
  nn::MoeConfig moe = default_moe();

  static nn::MoeConfig default_moe();
  int64_t lower_layers() const { return n_layer - n_vl_layer; }
  int64_t patches() const { return (image_size / patch_size) * (image_size / patch_size); }
  int64_t image_tokens() const { return 1 + patches(); }
  // Experts per modality in block i (0: a dense FFN).
  int64_t experts_at(int64_t block) const;
  // Throws gannet::Error naming the bad field.
  void validate() const;
};

// Multiply-adds x 2 per token, from the config alone.
struct VlMoeFlops {
  int64_t ffn = 0;     // the FFN (expert or dense) weights a token runs through, summed over blocks
  int64_t router = 0;  // its routers
};
VlMoeFlops active_flops_per_token(const VlMoeConfig& config);

// A batch: images u8 [B, S, S] and/or texts i32 [B, T] with mask u8 [B, T] (1 = real token); what
// is given picks the mode (image only, text only, or both: fusion, one sequence per pair).
struct VlMoeInput {
  Tensor images;
  Tensor text, text_mask;
};

struct VlMoeOutput {
  // Final hidden states [B * (I + T), C] (after ln_f): a sequence's I = 1 + P image tokens (none
  // without images), then its T text tokens (none without text).
  nn::Var hidden;
  int64_t image_tokens = 0, text_tokens = 0;  // I and T
  nn::Var image_pooled, text_pooled;          // [B, C]: each modality's [CLS] row; undefined if absent
  // Each modality's MoE layers: aux_loss (coefficient-weighted balance and z-losses, undefined when
  // none) and statistics per layer.
  nn::MoePass image_moe, text_moe;
};

class VlMoe {
 public:
  explicit VlMoe(const VlMoeConfig& config);
  const VlMoeConfig& config() const { return config_; }
  void init(uint64_t seed);
  // MoE layers run as in training when grad mode is on (capacity_factor, noise from `moe_seed`),
  // else as in evaluation. With `keep_routing`, each modality's MoePass keeps its layers' routings
  // (for the routing analysis, train/vlmoe_routing.h).
  VlMoeOutput forward(const VlMoeInput& input, uint64_t moe_seed = 0, bool keep_routing = false) const;
  // ITC's projections of the pooled vectors [B, C] -> [B, proj_dim], and its log logit scale [1].
  nn::Var image_projection(const nn::Var& pooled) const { return image_proj_.forward(pooled); }
  nn::Var text_projection(const nn::Var& pooled) const { return text_proj_.forward(pooled); }
  const nn::Var& logit_scale() const { return logit_scale_; }
  // ITM's logits [B, 2] (column 1: the pair matches) from fusion's image_pooled [B, C]; needs itm_head.
  nn::Var itm_logits(const nn::Var& fused_pooled) const;
  // MLM's logits [M, vocab_size] from M rows of a fusion pass's hidden states; needs mlm_head.
  nn::Var mlm_logits(const nn::Var& text_rows) const;
  // MIM's predicted pixels [M, p*p] (in [0, 1] when trained) from M image rows; needs mim_head.
  nn::Var mim_pixels(const nn::Var& image_rows) const;
  // forward() with the patches where patch_mask (u8 [B, P], 1 = masked, patches in row-major order)
  // is 1 replaced by img.mask_token before positions are added; needs mim_head and images.
  VlMoeOutput forward_masked(const VlMoeInput& input, const Tensor& patch_mask, uint64_t moe_seed = 0) const;
  const nn::ParameterList& parameters() const { return params_; }

 private:
  // One block: shared attention, then the feed-forward layer of each token's modality.
  struct Layer {
    nn::LayerNorm ln_1, ln_2;
    nn::Attention attn;
    std::optional<nn::Moe> v_moe, t_moe;  // an MoE lower block
    nn::Mlp v_mlp, t_mlp;                 // a dense lower block
    nn::Mlp vl_mlp;                       // a top block
    bool top = false;
  };
  struct Rows;  // which rows of the batch each modality's real tokens are
  Layer make_layer(int64_t index) const;
  Rows rows_of(const VlMoeInput& input) const;
  nn::Var embed_images(const Tensor& images, const Tensor& patch_mask) const;
  nn::Var mask_patches(const nn::Var& patches, const Tensor& patch_mask) const;
  nn::Var embed(const VlMoeInput& input, const Rows& rows, const Tensor& patch_mask) const;
  VlMoeOutput run(const VlMoeInput& input, const Tensor& patch_mask, uint64_t moe_seed, bool keep_routing) const;
  nn::Var modality_ffn(const Layer& l, bool image, const nn::Var& a, nn::MoePass& pass) const;
  nn::Var layer_forward(const Layer& l, const nn::Var& x, const Rows& rows, VlMoeOutput& out) const;

  VlMoeConfig config_;
  nn::ParameterList params_;
  nn::Linear patch_;
  nn::Var image_wpe_, text_wte_, text_wpe_;
  std::vector<Layer> layers_;
  nn::LayerNorm ln_f_;
  nn::Linear image_proj_, text_proj_;
  nn::Var logit_scale_;
  nn::Linear itm_head_;
  nn::Linear mlm_head_;
  nn::Var mask_token_;
  nn::Linear mim_head_;
};

}  // namespace gannet::models
