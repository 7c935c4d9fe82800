#include "gannet/train/vlmoe_task.h"

#include <filesystem>

#include "gannet/autograd/ops.h"
#include "gannet/core/format_number.h"
#include "gannet/models/vlmoe_losses.h"
#include "gannet/train/evaluate_vlmoe.h"
#include "gannet/train/moe_log.h"
#include "gannet/train/vlmoe_model.h"

namespace gannet::train {

namespace {

// The model block with the tokenizer's vocabulary.
models::VlMoeConfig sized_for(models::VlMoeConfig c, const data::GlyphTextTokenizer& tokenizer) {
  c.vocab_size = tokenizer.vocab_size();
  return c;
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
    return str("glyphs ", cfg_.data_dir, " (", train_.size(), " train pairs; validation ", cfg_.vlmoe_eval_split,
               ", ", eval_.size(), " pairs; tokenizer of ", tokenizer_.vocab_size(), " tokens)");
  }
  std::string describe_options() const override;

 private:
  const TrainConfig& cfg_;
  data::GlyphSet train_, eval_;
  data::GlyphTextTokenizer tokenizer_;
  data::GlyphBatches batches_;
  VlMoeModel model_;
  MoeLog image_moe_log_, text_moe_log_;
  Rng unused_rng_{0};
};

data::GlyphTextTokenizer tokenizer_for_run(const TrainConfig& cfg, const data::GlyphSet& train) {
  data::GlyphTextTokenizer tokenizer = data::GlyphTextTokenizer::build(train.names);
  std::filesystem::create_directories(cfg.out_dir);
  tokenizer.save((std::filesystem::path(cfg.out_dir) / "tokenizer.txt").string());
  return tokenizer;
}

VlMoeTask::VlMoeTask(const TrainConfig& cfg)
    : cfg_(cfg),
      train_(data::load_glyph_split(cfg.data_dir, "train")),
      eval_(data::load_glyph_split(cfg.data_dir, cfg.vlmoe_eval_split)),
      tokenizer_(tokenizer_for_run(cfg, train_)),
      batches_(train_, tokenizer_, cfg.micro_batch, cfg.vlmoe.text_ctx, cfg.seed),
      model_(sized_for(cfg.vlmoe, tokenizer_)) {
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
  const autograd::Var itc = models::image_text_contrastive(m.image_projection(img.image_pooled),
                                                           m.text_projection(txt.text_pooled), m.logit_scale());
  image_moe_log_.add(img.image_moe.layers, aux_value(img.image_moe));
  text_moe_log_.add(txt.text_moe.layers, aux_value(txt.text_moe));
  return {plus_aux(plus_aux(itc, img.image_moe), txt.text_moe), itc.value().f32()[0]};
}

void VlMoeTask::describe_step(int64_t, nlohmann::json& line) {
  if (model_.vlmoe.config().dense) return;
  line["moe_image"] = image_moe_log_.take();
  line["moe_text"] = text_moe_log_.take();
}

Figures VlMoeTask::validate(int64_t batches) {
  const VlMoeEval e = evaluate_vlmoe(model_.vlmoe, eval_, tokenizer_, cfg_.micro_batch, batches * cfg_.micro_batch);
  const RetrievalRecall& r = e.recall;
  return {validation_keys(), {e.loss, r.i2t_r1, r.i2t_r5, r.t2i_r1, r.t2i_r5}};
}

std::string VlMoeTask::describe_options() const {
  const models::VlMoeConfig& c = model_.vlmoe.config();
  const models::VlMoeFlops f = models::active_flops_per_token(c);
  const std::string ffn =
      c.dense ? std::string("dense V-FFN/T-FFN") : str("V-MoE/T-MoE (", c.moe.num_experts[0], " experts, top-", c.moe.k, ")");
  return str("gannet train: VL-MoE d ", c.n_embd, ", ", c.n_layer, " blocks (", c.lower_layers(), " lower: ", ffn, "; ",
             c.n_vl_layer, " VL-FFN), ", c.image_tokens(), " image tokens, text_ctx ", c.text_ctx, ", ",
             format_number("%.2f", (double)(f.ffn + f.router) / 1e6), " MFLOPs FFN per token\n");
}

}  // namespace

std::unique_ptr<TrainTask> make_vlmoe_task(const TrainConfig& config) { return std::make_unique<VlMoeTask>(config); }

}  // namespace gannet::train
