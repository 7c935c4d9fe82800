#include "gannet/train/vlmoe_task.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "gannet/autograd/contrastive_ops.h"
#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/kernels/gemm.h"
#include "gannet/core/format_number.h"
#include "gannet/data/image_text_pairs.h"
#include "gannet/models/vlmoe_losses.h"
#include "gannet/train/evaluate_vlmoe.h"
#include "gannet/train/moe_log.h"
#include "gannet/train/vlmoe_model.h"

namespace gannet::train {

namespace {

// The model block with the tokenizer's vocabulary, and the heads of the objectives trained.
models::VlMoeConfig sized_for(const TrainConfig& cfg, const data::GlyphTextTokenizer& tokenizer) {
  models::VlMoeConfig c = cfg.vlmoe;
  c.vocab_size = tokenizer.vocab_size();
  c.itm_head = c.itm_head || cfg.vlmoe_itm_weight > 0;
  c.mlm_head = c.mlm_head || cfg.vlmoe_mlm_weight > 0;
  c.mim_head = c.mim_head || cfg.vlmoe_mim_weight > 0;
  return c;
}

// A loss's mean since the last log line (ITM's, MLM's, MIM's).
struct RunningMean {
  double sum = 0;
  int64_t count = 0;
  void add(double v) {
    sum += v;
    ++count;
  }
  // Into line[key] when anything was added; starts over.
  void take(nlohmann::json& line, const char* key) {
    if (count > 0) line[key] = sum / (double)count;
    *this = {};
  }
};

// ITC's logits exp(s) cos(image i, text j) [B, B], as values: what ITM draws its hard negatives from.
Tensor itc_similarity(const autograd::Var& image_proj, const autograd::Var& text_proj, const autograd::Var& scale) {
  autograd::NoGrad no_grad;
  const Tensor img = autograd::l2_normalize_rows(image_proj).value(), txt = autograd::l2_normalize_rows(text_proj).value();
  const int64_t B = img.dim(0), D = img.dim(1);
  Tensor s = Tensor::zeros({B, B});
  const float t = std::exp(std::min(scale.value().f32()[0], models::kMaxLogitScale));
  kernels::gemm(false, true, B, B, D, t, img.f32(), D, txt.f32(), D, 0.0f, s.f32(), B);
  return s;
}

double aux_value(const nn::MoePass& pass) { return pass.aux_loss.defined() ? pass.aux_loss.value().f32()[0] : 0.0; }

autograd::Var plus_aux(autograd::Var loss, const nn::MoePass& pass) {
  return pass.aux_loss.defined() ? autograd::add(loss, pass.aux_loss) : loss;
}

class VlMoeTask : public TrainTask {
 public:
  explicit VlMoeTask(const TrainConfig& cfg);

  CheckpointModel& model() override { return model_; }
  std::unique_ptr<CheckpointModel> make_whole_model() const override {
    return std::make_unique<VlMoeModel>(model_.vlmoe.config());
  }
  dist::BucketPlan buckets() const override {
    return dist::transformer_buckets(model_.parameters(), model_.vlmoe.config().n_layer);
  }
  std::vector<const dist::ParameterPlacement*> split(dist::ProcessGroups&) override { return {}; }
  double whole_parameter_count() const override { return (double)nn::count_elements(model_.parameters()); }

  Rng& data_rng() override { return unused_rng_; }  // the data order follows from the seed alone
  void draw(int64_t, bool) override {}
  MicroLoss forward(const MicroBatch& batch) override;
  int64_t micro_tokens(int64_t) const override { return cfg_.micro_batch; }
  int64_t micro_layer_tokens(int64_t s) const override { return micro_tokens(s) * model_.vlmoe.config().n_layer; }
  const char* unit() const override { return "pair"; }
  void describe_step(int64_t, nlohmann::json& line) override;

  Figures validate(int64_t batches) override;
  std::vector<std::string> validation_keys() const override {
    return {"val_loss", "val_i2t_r1", "val_i2t_r5", "val_t2i_r1", "val_t2i_r5"};
  }
  std::string describe_validation(int64_t step, const Figures& f) const override {
    return str("step ", step, ": val ITC ", format_number("%.4f", f.values[0]), ", i2t R@1/R@5 ",
               format_number("%.3f", f.values[1]), "/", format_number("%.3f", f.values[2]), ", t2i R@1/R@5 ",
               format_number("%.3f", f.values[3]), "/", format_number("%.3f", f.values[4]));
  }
  std::string describe_data() const override {
    return str(format_.dataset, " ", cfg_.data_dir, " (", train_.size(), " train pairs; validation ", eval_split_,
               ", ", eval_.size(), " pairs; tokenizer of ", tokenizer_.vocab_size(), " tokens)");
  }
  std::string describe_options() const override;
  std::string objectives() const;  // "ITC + 0.5 x MLM"

 private:
  const TrainConfig& cfg_;
  data::ImageTextFormat format_;
  std::string eval_split_;
  data::GlyphSet train_, eval_;
  data::GlyphTextTokenizer tokenizer_;
  data::GlyphBatches batches_;
  VlMoeModel model_;
  MoeLog image_moe_log_, text_moe_log_;
  RunningMean itm_, mlm_, mim_;  // each loss since the last log line
  Rng unused_rng_{0};

  std::vector<std::string> names_of(const data::GlyphBatch& b) const;
  // ITM on the batch's positives and hard negatives drawn from ITC's similarities, with the fusion
  // pass's MoE auxiliary losses; weighted by vlmoe.itm_weight.
  autograd::Var itm(const data::GlyphBatch& b, const Tensor& similarity, uint64_t moe_seed);
  // MLM: the batch's texts, a share masked (drawn from `seed`), through a fusion pass with their
  // images; weighted by vlmoe.mlm_weight, with the pass's MoE auxiliary losses. Undefined when no
  // text has a word to mask.
  autograd::Var mlm(const data::GlyphBatch& b, uint64_t seed);
  // MIM: the batch's images, a share of patches masked (drawn from `seed`), image only; weighted by
  // vlmoe.mim_weight, with the pass's MoE auxiliary losses.
  autograd::Var mim(const data::GlyphBatch& b, uint64_t seed);
};

data::GlyphTextTokenizer tokenizer_for_run(const TrainConfig& cfg, const data::GlyphSet& train) {
  data::GlyphTextTokenizer tokenizer = data::GlyphTextTokenizer::build(train.names);
  std::filesystem::create_directories(cfg.out_dir);
  tokenizer.save((std::filesystem::path(cfg.out_dir) / "tokenizer.txt").string());
  return tokenizer;
}

VlMoeTask::VlMoeTask(const TrainConfig& cfg)
    : cfg_(cfg),
      format_(data::image_text_format(cfg.data_dir)),
      eval_split_(data::resolve_eval_split(format_, cfg.vlmoe_eval_split)),
      train_(data::load_image_text_split(cfg.data_dir, "train")),
      eval_(data::load_image_text_split(cfg.data_dir, eval_split_)),
      tokenizer_(tokenizer_for_run(cfg, train_)),
      batches_(train_, tokenizer_, cfg.micro_batch, cfg.vlmoe.text_ctx, cfg.seed),
      model_(sized_for(cfg, tokenizer_)) {
  GANNET_CHECK(train_.images.dim(1) == cfg.vlmoe.image_size && train_.images.dim(2) == cfg.vlmoe.image_size,
               cfg.data_dir, ": images are ", shape_str(train_.images.shape()), ", model.image_size is ",
               cfg.vlmoe.image_size);
  model_.vlmoe.init(cfg.seed);
}

MicroLoss VlMoeTask::forward(const MicroBatch& batch) {
  const int64_t index = batch.step * batch.count + batch.index;
  const data::GlyphBatch b = batches_.batch(index);
  const models::VlMoe& m = model_.vlmoe;
  // Distinct MoE noise streams per micro-batch and modality.
  const uint64_t moe_seed = cfg_.seed + 0xD1B54A32D192ED03ull * (uint64_t)(index + 1);
  const models::VlMoeOutput img = m.forward({b.images, {}, {}}, moe_seed);
  const models::VlMoeOutput txt = m.forward({{}, b.tokens, b.mask}, moe_seed ^ 0x5851F42D4C957F2Dull);
  const autograd::Var ip = m.image_projection(img.image_pooled), tp = m.text_projection(txt.text_pooled);
  // Every pair of the batch with the same text is a positive (Fashion-MNIST's class names repeat).
  const autograd::Var itc = models::image_text_contrastive(ip, tp, m.logit_scale(), names_of(b));
  image_moe_log_.add(img.image_moe.layers, aux_value(img.image_moe));
  text_moe_log_.add(txt.text_moe.layers, aux_value(txt.text_moe));
  autograd::Var loss = plus_aux(plus_aux(itc, img.image_moe), txt.text_moe);
  if (cfg_.vlmoe_itm_weight > 0)
    loss = autograd::add(loss, itm(b, itc_similarity(ip, tp, m.logit_scale()), moe_seed ^ 0x2545F4914F6CDD1Dull));
  if (cfg_.vlmoe_mlm_weight > 0)
    if (const autograd::Var l = mlm(b, moe_seed ^ 0x94D049BB133111EBull); l.defined()) loss = autograd::add(loss, l);
  if (cfg_.vlmoe_mim_weight > 0) loss = autograd::add(loss, mim(b, moe_seed ^ 0xBF58476D1CE4E5B9ull));
  return {loss, itc.value().f32()[0]};
}

std::vector<std::string> VlMoeTask::names_of(const data::GlyphBatch& b) const {
  std::vector<std::string> names;
  for (int64_t p : b.pairs) names.push_back(train_.names[(size_t)p]);
  return names;
}

autograd::Var VlMoeTask::itm(const data::GlyphBatch& b, const Tensor& similarity, uint64_t moe_seed) {
  Rng rng(moe_seed);
  const models::ItmPairs pairs = models::itm_pairs(models::sample_itm_negatives(similarity, names_of(b), rng));
  const models::ItmLoss l = models::image_text_matching(model_.vlmoe, b.images, b.tokens, b.mask, pairs, moe_seed);
  itm_.add(l.loss.value().f32()[0]);
  return plus_aux(plus_aux(autograd::scale(l.loss, (float)cfg_.vlmoe_itm_weight), l.fused.image_moe), l.fused.text_moe);
}

autograd::Var VlMoeTask::mlm(const data::GlyphBatch& b, uint64_t seed) {
  Rng rng(seed);
  const models::VlMoe& m = model_.vlmoe;
  const data::MlmBatch masked = models::mask_text(b.tokens, b.mask, m.config().vocab_size, cfg_.vlmoe_mlm_mask_ratio, rng);
  const models::MlmLoss l = models::masked_language_modelling(m, b.images, masked.inputs, b.mask, masked.targets, seed);
  if (!l.loss.defined()) return {};
  mlm_.add(l.loss.value().f32()[0]);
  return plus_aux(plus_aux(autograd::scale(l.loss, (float)cfg_.vlmoe_mlm_weight), l.fused.image_moe), l.fused.text_moe);
}

autograd::Var VlMoeTask::mim(const data::GlyphBatch& b, uint64_t seed) {
  Rng rng(seed);
  const models::VlMoe& m = model_.vlmoe;
  const Tensor patch_mask =
      models::sample_patch_mask(b.images.dim(0), m.config().patches(), cfg_.vlmoe_mim_mask_ratio, rng);
  const models::MimLoss l = models::masked_image_modelling(m, b.images, patch_mask, seed);
  mim_.add(l.loss.value().f32()[0]);
  return plus_aux(autograd::scale(l.loss, (float)cfg_.vlmoe_mim_weight), l.out.image_moe);
}

void VlMoeTask::describe_step(int64_t, nlohmann::json& line) {
  itm_.take(line, "itm");
  mlm_.take(line, "mlm");
  mim_.take(line, "mim");
  if (model_.vlmoe.config().dense) return;
  line["moe_image"] = image_moe_log_.take();
  line["moe_text"] = text_moe_log_.take();
}

Figures VlMoeTask::validate(int64_t batches) {
  const VlMoeEval e = evaluate_vlmoe(model_.vlmoe, eval_, tokenizer_, cfg_.micro_batch, batches * cfg_.micro_batch);
  const RetrievalRecall& r = e.recall;
  return {validation_keys(), {e.loss, r.i2t_r1, r.i2t_r5, r.t2i_r1, r.t2i_r5}};
}

std::string VlMoeTask::objectives() const {
  std::string s = "ITC";
  for (const auto& [name, weight] : {std::pair{"ITM", cfg_.vlmoe_itm_weight}, std::pair{"MLM", cfg_.vlmoe_mlm_weight},
                                     std::pair{"MIM", cfg_.vlmoe_mim_weight}})
    if (weight > 0) s += str(" + ", weight, " x ", name);
  return s;
}

std::string VlMoeTask::describe_options() const {
  const models::VlMoeConfig& c = model_.vlmoe.config();
  const models::VlMoeFlops f = models::active_flops_per_token(c);
  const std::string ffn =
      c.dense ? std::string("dense V-FFN/T-FFN") : str("V-MoE/T-MoE (", c.moe.num_experts[0], " experts, top-", c.moe.k, ")");
  return str("gannet train: VL-MoE d ", c.n_embd, ", ", c.n_layer, " blocks (", c.lower_layers(), " lower: ", ffn, "; ",
             c.n_vl_layer, " VL-FFN), ", c.image_tokens(), " image tokens, text_ctx ", c.text_ctx, ", ",
             format_number("%.2f", (double)(f.ffn + f.router) / 1e6), " MFLOPs FFN per token",
             "; ", objectives(), "\n");
}

}  // namespace

std::unique_ptr<TrainTask> make_vlmoe_task(const TrainConfig& config) { return std::make_unique<VlMoeTask>(config); }

}  // namespace gannet::train
