// VL-MoE (models/vlmoe.h), its ITC, ITM, MLM and MIM losses (models/vlmoe_losses.h) and the glyph
// text tokenizer: shapes in every mode, gradients against finite differences through ITC (also with
// repeated names), ITM, MLM and MIM, ITM's hard negatives, the MLM and MIM masks, multi-positive ITC
// and MIM against scalar references, modality routing (image tokens never reach text experts and
// back), equal active FFN FLOPs of the dense counterpart, determinism under a seed, the tokenizer's
// round trip and unknown words.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <map>

#include "gannet/autograd/contrastive_ops.h"
#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"
#include "gannet/data/glyph_text_tokenizer.h"
#include "gannet/io/vlmoe_checkpoint.h"
#include "gannet/models/vlmoe.h"
#include "gannet/models/vlmoe_losses.h"
#include "test_files.h"

using namespace gannet;
using autograd::Var;
using data::GlyphTextTokenizer;
using models::VlMoe;
using models::VlMoeConfig;
using models::VlMoeInput;
using gannet::testing::has;
using gannet::testing::message_of;

namespace {

const std::vector<std::string> kNames = {"LATIN SMALL LETTER E WITH CIRCUMFLEX", "BOX DRAWINGS LIGHT DOWN AND RIGHT",
                                         "CIRCLED DIGIT THREE", "HYPHEN-MINUS"};

// d 16, 2 blocks (one MoE, one VL-FFN), 2 experts per modality: the tiny model of the issue.
VlMoeConfig tiny_config() {
  VlMoeConfig c;
  c.image_size = 8;
  c.patch_size = 4;
  c.vocab_size = 32;
  c.text_ctx = 8;
  c.n_layer = 2;
  c.n_vl_layer = 1;
  c.n_head = 2;
  c.n_embd = 16;
  c.proj_dim = 8;
  c.moe.num_experts = {2};
  c.moe.drop_tokens = false;  // no capacity: finite differences do not flip who is dropped
  return c;
}

// B images with random pixels and B texts of different lengths (so some are padded).
VlMoeInput tiny_batch(int64_t B, uint64_t seed, const VlMoeConfig& c) {
  Rng rng(seed);
  VlMoeInput in;
  in.images = Tensor::empty({B, c.image_size, c.image_size}, DType::u8);
  for (int64_t i = 0; i < in.images.numel(); ++i) in.images.data<uint8_t>()[i] = (uint8_t)rng.below(256);
  const int64_t T = 6;
  in.text = Tensor::zeros({B, T}, DType::i32);
  in.text_mask = Tensor::zeros({B, T}, DType::u8);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = 3 + b % (T - 2);
    for (int64_t t = 0; t < len; ++t) {
      in.text.data<int32_t>()[b * T + t] =
          t == 0 ? GlyphTextTokenizer::kCls : t == len - 1 ? GlyphTextTokenizer::kSep : 5 + (int32_t)rng.below(27);
      in.text_mask.data<uint8_t>()[b * T + t] = 1;
    }
  }
  return in;
}

VlMoeInput image_only(VlMoeInput in) { return {in.images, {}, {}}; }
VlMoeInput text_only(VlMoeInput in) { return {{}, in.text, in.text_mask}; }

Var itc_loss(const VlMoe& m, const VlMoeInput& in) {
  models::VlMoeOutput img = m.forward(image_only(in)), txt = m.forward(text_only(in));
  return models::image_text_contrastive(m.image_projection(img.image_pooled), m.text_projection(txt.text_pooled),
                                        m.logit_scale());
}

const Var& param(const VlMoe& m, const std::string& name) {
  for (const auto& p : m.parameters())
    if (p.name == name) return p.var;
  throw Error("no parameter " + name);
}

std::vector<float> values(const Var& v) { return {v.value().f32(), v.value().f32() + v.value().numel()}; }

}  // namespace

TEST(VlMoe, ShapesInEveryMode) {
  const VlMoeConfig c = tiny_config();
  VlMoe m(c);
  m.init(1);
  const VlMoeInput in = tiny_batch(3, 7, c);
  autograd::NoGrad no_grad;
  const int64_t I = 1 + 4, T = 6, C = 16;
  models::VlMoeOutput img = m.forward(image_only(in));
  EXPECT_EQ(img.hidden.shape(), Shape({3 * I, C}));
  EXPECT_EQ(img.image_pooled.shape(), Shape({3, C}));
  EXPECT_FALSE(img.text_pooled.defined());
  models::VlMoeOutput txt = m.forward(text_only(in));
  EXPECT_EQ(txt.hidden.shape(), Shape({3 * T, C}));
  EXPECT_EQ(txt.text_pooled.shape(), Shape({3, C}));
  EXPECT_FALSE(txt.image_pooled.defined());
  models::VlMoeOutput both = m.forward(in);
  EXPECT_EQ(both.hidden.shape(), Shape({3 * (I + T), C}));
  EXPECT_EQ(both.image_tokens, I);
  EXPECT_EQ(both.text_tokens, T);
  EXPECT_EQ(both.image_pooled.shape(), Shape({3, C}));
  EXPECT_EQ(both.text_pooled.shape(), Shape({3, C}));
  // One MoE layer per modality saw its own tokens: 3 images x 5, and the texts' real tokens only.
  ASSERT_EQ(both.image_moe.layers.size(), 1u);
  ASSERT_EQ(both.text_moe.layers.size(), 1u);
  EXPECT_EQ(both.image_moe.layers[0].tokens, 3 * I);
  EXPECT_EQ(both.text_moe.layers[0].tokens, 3 + 4 + 5);
  EXPECT_EQ(m.image_projection(both.image_pooled).shape(), Shape({3, 8}));
}

TEST(VlMoe, AuxiliaryLossesPerModalityInTraining) {
  const VlMoeConfig c = tiny_config();
  VlMoe m(c);
  m.init(1);
  models::VlMoeOutput out = m.forward(tiny_batch(2, 3, c));
  ASSERT_TRUE(out.image_moe.aux_loss.defined());
  ASSERT_TRUE(out.text_moe.aux_loss.defined());
  // Top-1 balance loss is at least 1 (E/k times a sum that uniform routing makes 1/E), times 0.01.
  EXPECT_GT(out.image_moe.aux_loss.value().f32()[0], 0.f);
  EXPECT_GT(out.text_moe.aux_loss.value().f32()[0], 0.f);
  autograd::tape().clear();
}

// Finite differences through the ITC loss for parameters of each kind.
namespace {

using GradientChecks = std::vector<std::pair<std::string, std::vector<int64_t>>>;

// A tiny model with larger weights than GPT-2's init, so that every parameter moves a loss measurably.
VlMoe perturbed_model(const VlMoeConfig& c) {
  VlMoe m(c);
  m.init(5);
  Rng rng(9);
  for (const auto& p : m.parameters())
    if (p.name != "itc.logit_scale")
      for (int64_t i = 0; i < p.var.value().numel(); ++i) p.var.value().f32()[i] += 0.2f * rng.normal();
  return m;
}

// Backpropagates loss() once and compares the listed elements' gradients with central differences
// (the loss evaluated without grad: evaluation capacity is no limit either, drop_tokens being off).
void expect_gradients_match_finite_differences(const VlMoe& m, const std::function<Var()>& loss,
                                               const GradientChecks& checks) {
  nn::zero_grad(m.parameters());
  autograd::tape().backward(loss());
  auto loss_value = [&] {
    autograd::NoGrad no_grad;
    return (double)loss().value().f32()[0];
  };
  for (const auto& [name, indices] : checks) {
    const Var& v = param(m, name);
    for (int64_t i : indices) {
      float& w = v.value().f32()[i];
      const float saved = w, h = 1e-2f;
      w = saved + h;
      const double up = loss_value();
      w = saved - h;
      const double down = loss_value();
      w = saved;
      const double numeric = (up - down) / (2 * h), analytic = v.grad().f32()[i];
      EXPECT_NEAR(analytic, numeric, 1e-4 + 1e-2 * std::fabs(numeric)) << name << "[" << i << "]";
    }
  }
}

}  // namespace

TEST(VlMoe, ItcGradientsMatchFiniteDifferences) {
  const VlMoeConfig c = tiny_config();
  const VlMoe m = perturbed_model(c);
  const VlMoeInput in = tiny_batch(4, 11, c);
  expect_gradients_match_finite_differences(m, [&] { return itc_loss(m, in); },
                                            {{"img.patch.weight", {0, 17, 40}},
                                             {"h.0.v_moe.experts.c_fc.weight", {3, 700, 1500}},
                                             {"h.0.t_moe.experts.c_proj.weight", {5, 600, 1900}},
                                             {"h.0.t_moe.gate.weight", {1, 20}},
                                             {"h.1.vl_mlp.c_fc.weight", {2, 333}},
                                             {"txt.wte.weight", {16 * 2 + 3}},
                                             {"itc.logit_scale", {0}}});
}

// ITM through the fusion pass, the negatives fixed: the head, both modalities' experts and routers,
// the shared attention and the VL-FFN.
TEST(VlMoe, ItmGradientsMatchFiniteDifferences) {
  VlMoeConfig c = tiny_config();
  c.itm_head = true;
  const VlMoe m = perturbed_model(c);
  const VlMoeInput in = tiny_batch(4, 11, c);
  const models::ItmPairs pairs = models::itm_pairs({{1, 2, 3, 0}, {3, -1, 1, 2}});
  ASSERT_EQ(pairs.labels.numel(), 4 + 4 + 3);
  expect_gradients_match_finite_differences(
      m, [&] { return models::image_text_matching(m, in.images, in.text, in.text_mask, pairs).loss; },
      {{"itm.head.weight", {0, 17}},
       {"itm.head.bias", {1}},
       {"img.patch.weight", {0, 40}},
       {"h.0.v_moe.experts.c_fc.weight", {3, 1500}},
       {"h.0.t_moe.experts.c_proj.weight", {5, 1900}},
       {"h.0.v_moe.gate.weight", {1, 20}},
       {"h.0.attn.c_attn.weight", {7, 400}},
       {"h.1.vl_mlp.c_proj.weight", {2, 333}},
       {"txt.wte.weight", {16 * 2 + 3}}});
}

TEST(VlMoe, ItmPairsArePositivesThenEachDrawnNegative) {
  const models::ItmPairs p = models::itm_pairs({{2, -1, 0}, {1, 2, -1}});
  EXPECT_EQ(p.image, (std::vector<int64_t>{0, 1, 2, 0, 2, 1, 2}));
  EXPECT_EQ(p.text, (std::vector<int64_t>{0, 1, 2, 2, 0, 0, 1}));
  EXPECT_EQ(std::vector<int32_t>(p.labels.data<int32_t>(), p.labels.data<int32_t>() + 7),
            (std::vector<int32_t>{1, 1, 1, 0, 0, 0, 0}));
}

// The negatives' frequencies follow the softmax of the similarities over the other names: row 0
// [5, 1, 0] gives text 1 with probability e / (e + 1), never text 0 (the positive); column 0 likewise.
TEST(VlMoe, HardNegativesFollowTheSoftmaxOfTheSimilarities) {
  const Tensor s = Tensor::from_vector({5, 1, 0, /**/ 0, 5, 3, /**/ 1, 2, 5}, {3, 3});
  Rng rng(3);
  int64_t text1 = 0, image2 = 0;
  const int64_t draws = 20000;
  for (int64_t d = 0; d < draws; ++d) {
    const models::ItmNegatives n = models::sample_itm_negatives(s, {"A", "B", "C"}, rng);
    ASSERT_NE(n.text_for_image[0], 0);
    ASSERT_NE(n.image_for_text[0], 0);
    text1 += n.text_for_image[0] == 1;
    image2 += n.image_for_text[0] == 2;  // column 0: images 1 and 2 score 0 and 1
  }
  const double e = std::exp(1.0);
  EXPECT_NEAR((double)text1 / draws, e / (e + 1), 0.012);
  EXPECT_NEAR((double)image2 / draws, e / (e + 1), 0.012);
  // A pair sharing the positive's name is no negative; with none left, none is drawn.
  for (int d = 0; d < 200; ++d) {
    const models::ItmNegatives n = models::sample_itm_negatives(s, {"A", "B", "A"}, rng);
    EXPECT_EQ(n.text_for_image[0], 1);
    EXPECT_EQ(n.image_for_text[2], 1);
  }
  const models::ItmNegatives none = models::sample_itm_negatives(s, {"A", "A", "A"}, rng);
  EXPECT_EQ(none.text_for_image, (std::vector<int64_t>{-1, -1, -1}));
  EXPECT_TRUE(has(message_of([&] { models::sample_itm_negatives(s, {"A", "B"}, rng); }), "for 2 pairs"));
}

TEST(VlMoe, ItmNeedsTheHead) {
  const VlMoeConfig c = tiny_config();
  VlMoe m(c);
  m.init(1);
  const VlMoeInput in = tiny_batch(2, 1, c);
  EXPECT_TRUE(has(message_of([&] {
                    models::image_text_matching(m, in.images, in.text, in.text_mask, models::itm_pairs({{1, 0}, {1, 0}}));
                  }),
                  "no ITM head"));
}

TEST(VlMoe, LogitScaleIsClampedAtOneHundred) {
  Var x(Tensor::full({2, 2}, 1.f), true), s(Tensor::full({1}, 6.f), true);
  Var y = autograd::scale_by_exp(x, s, models::kMaxLogitScale);
  EXPECT_NEAR(y.value().f32()[0], 100.f, 1e-3);
  autograd::tape().backward(autograd::cross_entropy(y, Tensor::zeros({2}, DType::i32)));
  EXPECT_EQ(s.grad().f32()[0], 0.f);  // clamped: no gradient pushes it further out
}

TEST(VlMoe, ItcIsLowWhenPairsMatchAndSymmetric) {
  // Identical embeddings for image and text, far apart across pairs: the diagonal wins.
  Tensor e = Tensor::zeros({3, 3});
  for (int i = 0; i < 3; ++i) e.f32()[i * 3 + i] = 2.f;
  Var s(Tensor::full({1}, models::kMaxLogitScale));
  const float matched = models::image_text_contrastive(Var(e), Var(e.clone()), s).value().f32()[0];
  EXPECT_LT(matched, 1e-6f);
  Tensor shuffled = Tensor::zeros({3, 3});
  for (int i = 0; i < 3; ++i) shuffled.f32()[i * 3 + (i + 1) % 3] = 1.f;
  const float wrong = models::image_text_contrastive(Var(e), Var(shuffled), s).value().f32()[0];
  EXPECT_GT(wrong, 50.f);
}

// Image tokens reach only vision experts, text tokens only text experts: zeroing the text experts
// leaves image-only outputs bitwise unchanged (and changes text-only ones).
TEST(VlMoe, ImageTokensOnlyReachVisionExpertsAndTextTokensTextExperts) {
  const VlMoeConfig c = tiny_config();
  VlMoe m(c);
  m.init(2);
  const VlMoeInput in = tiny_batch(3, 4, c);
  autograd::NoGrad no_grad;
  const std::vector<float> image_before = values(m.forward(image_only(in)).hidden);
  const std::vector<float> text_before = values(m.forward(text_only(in)).hidden);
  param(m, "h.0.t_moe.experts.c_fc.weight").value().zero();
  param(m, "h.0.t_moe.experts.c_proj.weight").value().zero();
  EXPECT_EQ(values(m.forward(image_only(in)).hidden), image_before);
  EXPECT_NE(values(m.forward(text_only(in)).hidden), text_before);
  param(m, "h.0.v_moe.experts.c_fc.weight").value().zero();
  EXPECT_NE(values(m.forward(image_only(in)).hidden), image_before);
}

// In fusion, image rows see the text experts only through attention in a later block: with a single
// block, zeroing the text experts leaves every image row bitwise unchanged.
TEST(VlMoe, FusionRoutesEachRowToItsModalityExperts) {
  VlMoeConfig c = tiny_config();
  c.n_layer = 1;
  c.n_vl_layer = 0;
  VlMoe m(c);
  m.init(3);
  const VlMoeInput in = tiny_batch(2, 5, c);
  autograd::NoGrad no_grad;
  models::VlMoeOutput before = m.forward(in);
  param(m, "h.0.t_moe.experts.c_fc.weight").value().zero();
  models::VlMoeOutput after = m.forward(in);
  const int64_t L = before.image_tokens + before.text_tokens, C = c.n_embd;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < before.image_tokens * C; ++i)
      EXPECT_EQ(before.hidden.value().f32()[b * L * C + i], after.hidden.value().f32()[b * L * C + i]);
  EXPECT_NE(values(before.text_pooled), values(after.text_pooled));
  EXPECT_EQ(after.image_moe.layers[0].tokens, 2 * before.image_tokens);
}

TEST(VlMoe, DenseCounterpartHasTheSameActiveFfnFlops) {
  VlMoeConfig sparse;
  sparse.moe.num_experts = {8};
  VlMoeConfig dense = sparse;
  dense.dense = true;
  const models::VlMoeFlops fs = models::active_flops_per_token(sparse), fd = models::active_flops_per_token(dense);
  const int64_t C = sparse.n_embd;
  EXPECT_EQ(fs.ffn, fd.ffn);
  EXPECT_EQ(fd.ffn, sparse.n_layer * 16 * C * C);  // 2 matrices of C x 4C, 2 FLOPs a multiply-add
  EXPECT_EQ(fd.router, 0);
  EXPECT_EQ(fs.router, (sparse.n_layer - sparse.n_vl_layer) * 2 * 8 * C);
  // The dense model has no experts, the sparse one 8 per modality in each lower block.
  VlMoe ms(sparse), md(dense);
  EXPECT_GT(nn::count_elements(ms.parameters()), nn::count_elements(md.parameters()));
  for (const auto& p : md.parameters()) EXPECT_EQ(p.name.find("moe"), std::string::npos) << p.name;
  // Top-2 doubles the experts' share.
  sparse.moe.k = 2;
  EXPECT_EQ(models::active_flops_per_token(sparse).ffn - fd.ffn, (sparse.n_layer - sparse.n_vl_layer) * 16 * C * C);
}

TEST(VlMoe, DeterministicUnderASeed) {
  const VlMoeConfig c = tiny_config();
  VlMoe a(c), b(c);
  a.init(42);
  b.init(42);
  const VlMoeInput in = tiny_batch(2, 1, c);
  autograd::NoGrad no_grad;
  EXPECT_EQ(values(a.forward(in, 3).hidden), values(b.forward(in, 3).hidden));
  VlMoe other(c);
  other.init(43);
  EXPECT_NE(values(a.forward(in, 3).hidden), values(other.forward(in, 3).hidden));
}

TEST(VlMoe, RejectsBadConfigsAndInputs) {
  VlMoeConfig c = tiny_config();
  c.patch_size = 3;
  EXPECT_THROW(VlMoe{c}, Error);
  c = tiny_config();
  c.n_vl_layer = 3;
  EXPECT_THROW(VlMoe{c}, Error);
  c = tiny_config();
  c.moe.k = 3;
  EXPECT_THROW(VlMoe{c}, Error);
  VlMoe m(tiny_config());
  m.init(1);
  VlMoeInput in = tiny_batch(2, 1, tiny_config());
  in.images = Tensor::zeros({2, 16, 16}, DType::u8);
  autograd::NoGrad no_grad;
  EXPECT_THROW(m.forward(in), Error);
  EXPECT_THROW(m.forward(VlMoeInput{}), Error);
}

TEST(GlyphTextTokenizer, RoundTripsNamesAndMarksUnknownWords) {
  GlyphTextTokenizer tok = GlyphTextTokenizer::build(kNames);
  EXPECT_EQ(tok.token(GlyphTextTokenizer::kPad), "[PAD]");
  EXPECT_EQ(tok.token(GlyphTextTokenizer::kMask), "[MASK]");
  for (const std::string& name : kNames) EXPECT_EQ(tok.decode(tok.encode(name)), name);
  EXPECT_EQ(GlyphTextTokenizer::split("HYPHEN-MINUS SIGN"), (std::vector<std::string>{"HYPHEN", "-", "MINUS", "SIGN"}));
  std::vector<int32_t> ids = tok.encode("CIRCLED TIBETAN DIGIT");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], GlyphTextTokenizer::kUnk);
  EXPECT_EQ(tok.decode(ids), "CIRCLED [UNK] DIGIT");
  // The one loss: a hyphen after a space (12 Tibetan names) decodes glued to the word before.
  GlyphTextTokenizer tibetan = GlyphTextTokenizer::build({"TIBETAN MARK -UM"});
  EXPECT_EQ(tibetan.decode(tibetan.encode("TIBETAN MARK -UM")), "TIBETAN MARK-UM");
}

TEST(GlyphTextTokenizer, MostFrequentWordsFirstAndMinCount) {
  GlyphTextTokenizer tok = GlyphTextTokenizer::build({"B A", "A C", "A B"}, 2);
  EXPECT_EQ(tok.vocab_size(), 5 + 2);
  EXPECT_EQ(tok.token(5), "A");
  EXPECT_EQ(tok.token(6), "B");
  EXPECT_EQ(tok.id("C"), GlyphTextTokenizer::kUnk);
}

class GlyphTextTokenizerFiles : public gannet::testing::TempDirTest {};

TEST_F(GlyphTextTokenizerFiles, SavesAndLoads) {
  const std::string path = file("vocab.txt");
  GlyphTextTokenizer tok = GlyphTextTokenizer::build(kNames);
  tok.save(path);
  GlyphTextTokenizer back = GlyphTextTokenizer::load(path);
  ASSERT_EQ(back.vocab_size(), tok.vocab_size());
  for (int32_t i = 0; i < tok.vocab_size(); ++i) EXPECT_EQ(back.token(i), tok.token(i));
  write_file_atomic(path, "gannet-glyph-text-vocab-1\n[PAD]\n[CLS]\n");
  EXPECT_NE(gannet::testing::message_of([&] { GlyphTextTokenizer::load(path); }).find("vocab.txt:3"),
            std::string::npos);
  write_file_atomic(path, "[PAD]\n");
  EXPECT_THROW(GlyphTextTokenizer::load(path), Error);
}

TEST(GlyphTextTokenizer, EncodesABatchWithClsSepAndPadding) {
  GlyphTextTokenizer tok = GlyphTextTokenizer::build(kNames);
  Tensor tokens, mask;
  tok.encode_batch({"CIRCLED DIGIT THREE", "LATIN SMALL LETTER E WITH CIRCUMFLEX"}, 5, tokens, mask);
  ASSERT_EQ(tokens.shape(), Shape({2, 5}));
  const int32_t* t = tokens.data<int32_t>();
  EXPECT_EQ(t[0], GlyphTextTokenizer::kCls);
  EXPECT_EQ(t[4], GlyphTextTokenizer::kSep);
  EXPECT_EQ(tok.decode({t + 1, t + 4}), "CIRCLED DIGIT THREE");
  EXPECT_EQ(t[5 + 4], GlyphTextTokenizer::kSep);  // cut, keeping [SEP]
  EXPECT_EQ(tok.decode({t + 6, t + 9}), "LATIN SMALL LETTER");
  EXPECT_EQ(mask.data<uint8_t>()[4], 1);
}

// The other layouts run: the dense counterpart, PR-MoE experts beside a dense FFN, MoE in every
// other lower block, and Fashion-MNIST's 28 x 28 images (49 patches).
TEST(VlMoe, OtherLayoutsRunInFusion) {
  VlMoeConfig dense = tiny_config();
  dense.dense = true;
  VlMoeConfig residual = tiny_config();
  residual.moe.use_residual = true;
  VlMoeConfig interval = tiny_config();
  interval.n_layer = 3;
  interval.moe.expert_interval = 2;  // of the two lower blocks, block 1
  VlMoeConfig fashion = tiny_config();
  fashion.image_size = 28;
  for (const VlMoeConfig& c : {dense, residual, interval, fashion}) {
    VlMoe m(c);
    m.init(1);
    models::VlMoeOutput out = m.forward(tiny_batch(2, 3, c));
    EXPECT_EQ(out.hidden.shape(), Shape({2 * (c.image_tokens() + 6), c.n_embd}));
    EXPECT_EQ(out.image_moe.layers.size(), c.dense ? 0u : 1u);
    EXPECT_EQ(out.text_moe.layers.size(), c.dense ? 0u : 1u);
    autograd::tape().clear();
  }
  EXPECT_EQ(VlMoeConfig{fashion}.image_tokens(), 1 + 49);
  EXPECT_EQ(interval.experts_at(0), 0);
  EXPECT_EQ(interval.experts_at(1), 2);
  EXPECT_EQ(interval.experts_at(2), 0);
}

// ---- MLM, MIM and ITC with repeated names ----

namespace {

// The MLM corruption of tiny_batch's texts at fixed positions: targets at (0, 1), (1, 2), (2, 1),
// (3, 3), the inputs there [MASK].
data::MlmBatch fixed_mlm_mask(const VlMoeInput& in) {
  data::MlmBatch m{in.text.clone(), Tensor::empty(in.text.shape(), DType::i32), 0};
  std::fill_n(m.targets.data<int32_t>(), m.targets.numel(), -1);
  const int64_t T = in.text.dim(1);
  for (const auto& [b, t] : {std::pair{0, 1}, std::pair{1, 2}, std::pair{2, 1}, std::pair{3, 3}}) {
    m.targets.data<int32_t>()[b * T + t] = in.text.data<int32_t>()[b * T + t];
    m.inputs.data<int32_t>()[b * T + t] = GlyphTextTokenizer::kMask;
    ++m.chosen;
  }
  return m;
}

template <class T>
std::vector<T> elements(const Tensor& t) {
  return {t.data<T>(), t.data<T>() + t.numel()};
}

Tensor u8_tensor(const std::vector<uint8_t>& v, const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::u8);
  std::copy(v.begin(), v.end(), t.data<uint8_t>());
  return t;
}

Tensor fixed_patch_mask() {  // 4 images of 4 patches
  return u8_tensor({1, 0, 0, 1, /**/ 0, 1, 0, 0, /**/ 0, 0, 1, 1, /**/ 1, 1, 1, 0}, {4, 4});
}

}  // namespace

// MLM through the fusion pass, the masked positions fixed: the head, the words, the image side
// (the text is conditioned on it through attention), both modalities' experts, attention, VL-FFN.
TEST(VlMoe, MlmGradientsMatchFiniteDifferences) {
  VlMoeConfig c = tiny_config();
  c.mlm_head = true;
  const VlMoe m = perturbed_model(c);
  const VlMoeInput in = tiny_batch(4, 11, c);
  const data::MlmBatch masked = fixed_mlm_mask(in);
  expect_gradients_match_finite_differences(
      m,
      [&] {
        return models::masked_language_modelling(m, in.images, masked.inputs, in.text_mask, masked.targets).loss;
      },
      {{"mlm.head.weight", {0, 17, 16 * 20 + 3}},
       {"mlm.head.bias", {1, 9}},
       {"txt.wte.weight", {16 * GlyphTextTokenizer::kMask + 2, 16 * 5 + 7}},
       {"img.patch.weight", {0, 40}},
       {"h.0.v_moe.experts.c_fc.weight", {3, 1500}},
       {"h.0.t_moe.experts.c_proj.weight", {5, 1900}},
       // Not input columns 1, 4, 11 or 12 of the router (either expert's row): there a step of 1e-2
       // moves a nearly tied text token to the other expert, a jump of top-1 routing, not a gradient.
       {"h.0.t_moe.gate.weight", {2, 19}},
       {"h.0.attn.c_attn.weight", {7, 400}},
       {"h.1.vl_mlp.c_fc.weight", {2, 333}}});
}

// MIM through the image-only pass, the masked patches fixed: the head, the mask token, the patch
// embedding and positions, the vision experts and router, attention and the VL-FFN.
TEST(VlMoe, MimGradientsMatchFiniteDifferences) {
  VlMoeConfig c = tiny_config();
  c.mim_head = true;
  const VlMoe m = perturbed_model(c);
  const VlMoeInput in = tiny_batch(4, 11, c);
  const Tensor mask = fixed_patch_mask();
  expect_gradients_match_finite_differences(
      m, [&] { return models::masked_image_modelling(m, in.images, mask).loss; },
      {{"mim.head.weight", {0, 17, 16 * 15 + 4}},
       {"mim.head.bias", {1, 15}},
       {"img.mask_token", {0, 11}},
       {"img.patch.weight", {0, 40}},
       {"img.wpe.weight", {16 + 3, 16 * 4 + 1}},
       {"h.0.v_moe.experts.c_fc.weight", {3, 1500}},
       {"h.0.v_moe.gate.weight", {1, 20}},
       {"h.0.attn.c_attn.weight", {7, 400}},
       {"h.1.vl_mlp.c_proj.weight", {2, 333}}});
}

// Multi-positive ITC: a tiny model, pairs 0 and 2 of one name.
TEST(VlMoe, ItcWithRepeatedNamesGradientsMatchFiniteDifferences) {
  const VlMoeConfig c = tiny_config();
  const VlMoe m = perturbed_model(c);
  const VlMoeInput in = tiny_batch(4, 11, c);
  const std::vector<std::string> names = {"A", "B", "A", "C"};
  expect_gradients_match_finite_differences(
      m,
      [&] {
        models::VlMoeOutput img = m.forward(image_only(in)), txt = m.forward(text_only(in));
        return models::image_text_contrastive(m.image_projection(img.image_pooled),
                                              m.text_projection(txt.text_pooled), m.logit_scale(), names);
      },
      {{"img.patch.weight", {0, 17}}, {"h.0.t_moe.experts.c_fc.weight", {3, 700}}, {"itc.logit_scale", {0}}});
}

namespace {

// ITC by hand in double: rows L2-normalised, logits t cos, each row's (and column's) cross-entropy
// against the uniform distribution over the pairs of its name, the two directions averaged.
double reference_itc(const std::vector<float>& img, const std::vector<float>& txt, int64_t D, float s,
                     const std::vector<std::string>& names) {
  const int64_t B = (int64_t)names.size();
  auto normalised = [&](const std::vector<float>& x) {
    std::vector<double> y(x.begin(), x.end());
    for (int64_t i = 0; i < B; ++i) {
      double n = 0;
      for (int64_t d = 0; d < D; ++d) n += y[i * D + d] * y[i * D + d];
      for (int64_t d = 0; d < D; ++d) y[i * D + d] /= std::sqrt(n);
    }
    return y;
  };
  const std::vector<double> a = normalised(img), b = normalised(txt);
  const double t = std::exp(std::min((double)s, std::log(100.0)));
  std::vector<double> logit(B * B);
  for (int64_t i = 0; i < B; ++i)
    for (int64_t j = 0; j < B; ++j) {
      double dot = 0;
      for (int64_t d = 0; d < D; ++d) dot += a[i * D + d] * b[j * D + d];
      logit[i * B + j] = t * dot;
    }
  double loss = 0;
  for (int dir = 0; dir < 2; ++dir)
    for (int64_t i = 0; i < B; ++i) {
      auto at = [&](int64_t j) { return dir == 0 ? logit[i * B + j] : logit[j * B + i]; };
      double z = 0, same = 0, target_logit = 0;
      for (int64_t j = 0; j < B; ++j) z += std::exp(at(j));
      for (int64_t j = 0; j < B; ++j)
        if (names[j] == names[i]) {
          same += 1;
          target_logit += at(j);
        }
      loss += std::log(z) - target_logit / same;  // -sum_j (1 / same) log softmax_j over the positives
    }
  return loss / (2.0 * (double)B);
}

}  // namespace

TEST(VlMoe, ItcWithRepeatedNamesMatchesAScalarReference) {
  Rng rng(4);
  const int64_t B = 6, D = 5;
  std::vector<float> img(B * D), txt(B * D);
  for (float& v : img) v = rng.normal();
  for (float& v : txt) v = rng.normal();
  const std::vector<std::string> names = {"Bag", "Coat", "Bag", "Dress", "Coat", "Bag"};
  for (const float s : {0.5f, models::kInitialLogitScale, 6.f}) {  // 6: clamped at ln 100
    const Var scale(Tensor::full({1}, s));
    const float got = models::image_text_contrastive(Var(Tensor::from_vector(img, {B, D})),
                                                     Var(Tensor::from_vector(txt, {B, D})), scale, names)
                          .value()
                          .f32()[0];
    EXPECT_NEAR(got, reference_itc(img, txt, D, s, names), 1e-5) << "s " << s;
  }
  // Distinct names: bitwise the diagonal loss; and the soft form with identity targets agrees with it.
  const std::vector<std::string> distinct = {"a", "b", "c", "d", "e", "f"};
  const Var scale(Tensor::full({1}, models::kInitialLogitScale));
  auto embed = [&](const std::vector<float>& v) { return Var(Tensor::from_vector(v, {B, D})); };
  const float diagonal = models::image_text_contrastive(embed(img), embed(txt), scale).value().f32()[0];
  EXPECT_EQ(models::image_text_contrastive(embed(img), embed(txt), scale, distinct).value().f32()[0], diagonal);
  Tensor identity = Tensor::zeros({B, B});
  for (int64_t i = 0; i < B; ++i) identity.f32()[i * B + i] = 1.f;
  EXPECT_NEAR(models::image_text_contrastive_soft(embed(img), embed(txt), scale, identity).value().f32()[0], diagonal,
              1e-5);
  EXPECT_NEAR(diagonal, reference_itc(img, txt, D, models::kInitialLogitScale, distinct), 1e-5);
  EXPECT_FALSE(models::names_repeat(distinct));
  EXPECT_TRUE(models::names_repeat(names));
  EXPECT_TRUE(has(message_of([&] { models::image_text_contrastive(embed(img), embed(txt), scale, {"a"}); }),
                  "1 names"));
}

// The MLM mask: per text max(1, round(ratio * n)) of its n words, never a special token, the same
// from the same seed.
TEST(VlMoe, MlmMaskChoosesWordsOnlyAtTheRatioFromTheSeed) {
  const int64_t B = 40, T = 12, V = 30;
  Tensor text = Tensor::zeros({B, T}, DType::i32), mask = Tensor::zeros({B, T}, DType::u8);
  Rng fill(2);
  std::vector<int64_t> words(B);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = 3 + b % (T - 2);  // [CLS], 1 to 10 tokens, [SEP]
    for (int64_t t = 0; t < len; ++t) {
      int32_t id = 5 + (int32_t)fill.below(V - 5);
      if (t == 0) id = GlyphTextTokenizer::kCls;
      else if (t == len - 1) id = GlyphTextTokenizer::kSep;
      else if (t == 2) id = GlyphTextTokenizer::kUnk;  // an unknown word is never a target either
      text.data<int32_t>()[b * T + t] = id;
      mask.data<uint8_t>()[b * T + t] = 1;
      words[b] += id >= 5;
    }
  }
  for (const float ratio : {0.15f, 0.5f, 0.9f}) {
    Rng rng(7), same(7), other(8);
    const data::MlmBatch m = models::mask_text(text, mask, V, ratio, rng);
    EXPECT_EQ(elements<int32_t>(m.inputs), elements<int32_t>(models::mask_text(text, mask, V, ratio, same).inputs));
    EXPECT_NE(elements<int32_t>(m.targets),
              elements<int32_t>(models::mask_text(text, mask, V, ratio, other).targets));
    int64_t masked_tokens = 0, chosen = 0;
    for (int64_t b = 0; b < B; ++b) {
      int64_t in_text = 0;
      for (int64_t t = 0; t < T; ++t) {
        const int32_t original = text.data<int32_t>()[b * T + t], target = m.targets.data<int32_t>()[b * T + t];
        const int32_t input = m.inputs.data<int32_t>()[b * T + t];
        if (target < 0) {
          EXPECT_EQ(input, original) << "an unchosen token stays";
          continue;
        }
        EXPECT_GE(original, 5) << "never [PAD], [UNK], [CLS], [SEP] or [MASK]";
        EXPECT_EQ(target, original);
        EXPECT_TRUE(input == GlyphTextTokenizer::kMask || input >= 5);
        masked_tokens += input == GlyphTextTokenizer::kMask;
        ++in_text;
      }
      const int64_t expect = std::max<int64_t>(1, (int64_t)std::floor(ratio * (double)words[b] + 0.5));
      EXPECT_EQ(in_text, std::min(expect, words[b])) << "text " << b << ", ratio " << ratio;
      chosen += in_text;
    }
    EXPECT_EQ(chosen, m.chosen);
    EXPECT_GT(masked_tokens, chosen / 2) << "most chosen tokens become [MASK] (BERT's 80%)";
  }
  Rng rng(1);
  EXPECT_TRUE(has(message_of([&] { models::mask_text(text, mask, V, 1.f, rng); }), "not in (0, 1)"));
}

TEST(VlMoe, PatchMaskChoosesTheRatioUniformlyFromTheSeed) {
  const int64_t B = 2000, P = 16;
  Rng rng(3), same(3);
  const Tensor m = models::sample_patch_mask(B, P, 0.4f, rng);
  EXPECT_EQ(elements<uint8_t>(m), elements<uint8_t>(models::sample_patch_mask(B, P, 0.4f, same)));
  std::vector<int64_t> per_patch(P);
  for (int64_t b = 0; b < B; ++b) {
    int64_t n = 0;
    for (int64_t k = 0; k < P; ++k) {
      n += m.data<uint8_t>()[b * P + k];
      per_patch[k] += m.data<uint8_t>()[b * P + k];
    }
    ASSERT_EQ(n, 6) << "round(0.4 x 16)";
  }
  for (int64_t k = 0; k < P; ++k) EXPECT_NEAR((double)per_patch[k] / B, 6.0 / 16, 0.04) << "patch " << k;
  Rng r(1);
  const Tensor one = models::sample_patch_mask(3, P, 0.01f, r);
  for (int64_t b = 0; b < 3; ++b)
    EXPECT_EQ(std::count(one.data<uint8_t>() + b * P, one.data<uint8_t>() + (b + 1) * P, 1), 1) << "at least one";
  EXPECT_TRUE(has(message_of([&] { models::sample_patch_mask(3, P, 0.f, r); }), "not in (0, 1)"));
}

// MIM on a 4 x 4 image of 2 x 2 patches, two of them masked: the targets are those patches'
// pixels / 255, and the loss the mean squared error of the head on their final rows, by hand.
TEST(VlMoe, MimLossMatchesAHandComputation) {
  VlMoeConfig c = tiny_config();
  c.image_size = 4;
  c.patch_size = 2;
  c.mim_head = true;
  VlMoe m(c);
  m.init(3);
  Tensor images = Tensor::empty({1, 4, 4}, DType::u8);
  for (int64_t i = 0; i < 16; ++i) images.data<uint8_t>()[i] = (uint8_t)(16 * i);  // pixel (y, x): 64 y + 16 x
  const Tensor mask = u8_tensor({0, 1, 1, 0}, {1, 4});  // patches (0, 1) and (1, 0)
  const Tensor target = models::masked_patch_pixels(images, mask, 2);
  const std::vector<float> expect = {32, 48, 96, 112, /**/ 128, 144, 192, 208};
  ASSERT_EQ(target.shape(), Shape({2, 4}));
  for (int64_t i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(target.f32()[i], expect[i] / 255.f);
  autograd::NoGrad no_grad;
  const models::MimLoss l = models::masked_image_modelling(m, images, mask);
  const Tensor& h = l.out.hidden.value();  // [1 + 4, 16]: rows 2 and 3 are the masked patches
  const Tensor &w = param(m, "mim.head.weight").value(), &bias = param(m, "mim.head.bias").value();
  double sum = 0;
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t o = 0; o < 4; ++o) {
      double y = bias.f32()[o];
      for (int64_t k = 0; k < 16; ++k) y += (double)w.f32()[o * 16 + k] * h.f32()[(2 + r) * 16 + k];
      const double d = y - expect[r * 4 + o] / 255.0;
      sum += d * d;
    }
  EXPECT_NEAR(l.loss.value().f32()[0], sum / 8, 1e-6);
  // A masked patch's pixels reach nothing: the mask token stands in for them.
  Tensor changed = images.clone();
  changed.data<uint8_t>()[2] = 0;  // pixel (0, 2), in patch (0, 1)
  EXPECT_EQ(values(m.forward_masked({changed, {}, {}}, mask).hidden), values(l.out.hidden));
  changed.data<uint8_t>()[1] = 0;  // pixel (0, 1), in the unmasked patch (0, 0)
  EXPECT_NE(values(m.forward_masked({changed, {}, {}}, mask).hidden), values(l.out.hidden));
}

// The heads and the mask token exist only when the config says so; the flags round-trip through
// the checkpoint's config JSON, and an older config without them reads as false.
TEST(VlMoe, MlmAndMimParametersOnlyWithTheirFlags) {
  VlMoeConfig c = tiny_config();
  auto names_of = [](const VlMoe& m) {
    std::map<std::string, Shape> n;
    for (const auto& p : m.parameters()) n[p.name] = p.var.shape();
    return n;
  };
  const auto plain = names_of(VlMoe(c));
  for (const char* name : {"mlm.head.weight", "mim.head.weight", "img.mask_token"}) EXPECT_EQ(plain.count(name), 0u);
  c.mlm_head = c.mim_head = true;
  const auto both = names_of(VlMoe(c));
  EXPECT_EQ(both.at("mlm.head.weight"), Shape({32, 16}));
  EXPECT_EQ(both.at("mlm.head.bias"), Shape({32}));
  EXPECT_EQ(both.at("img.mask_token"), Shape({1, 16}));
  EXPECT_EQ(both.at("mim.head.weight"), Shape({16, 16}));
  EXPECT_EQ(both.at("mim.head.bias"), Shape({16}));
  nlohmann::json j = io::vlmoe_config_to_json(c);
  const VlMoeConfig back = io::read_vlmoe_config(io::JsonReader(j, "c"), {}, true);
  EXPECT_TRUE(back.mlm_head && back.mim_head);
  j.erase("mlm_head");
  j.erase("mim_head");
  const VlMoeConfig old = io::read_vlmoe_config(io::JsonReader(j, "c"), {}, true);
  EXPECT_FALSE(old.mlm_head || old.mim_head);
  VlMoe without(tiny_config());
  const VlMoeInput in = tiny_batch(4, 1, tiny_config());
  EXPECT_TRUE(has(message_of([&] { without.forward_masked(image_only(in), fixed_patch_mask()); }), "mim_head"));
  EXPECT_TRUE(has(message_of([&] { without.mlm_logits(Var(Tensor::zeros({1, 16}))); }), "no MLM head"));
  VlMoe with(c);
  EXPECT_TRUE(has(message_of([&] { with.forward_masked(image_only(in), Tensor::zeros({4, 3}, DType::u8)); }),
                  "patch mask"));
  autograd::tape().clear();
}
