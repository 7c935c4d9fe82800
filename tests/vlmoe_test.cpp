// VL-MoE (models/vlmoe.h), its ITC and ITM losses (models/vlmoe_losses.h) and the glyph text
// tokenizer: shapes in every mode, gradients against finite differences through ITC and ITM, ITM's
// hard negatives, modality routing (image tokens never reach text experts and back), equal active
// FFN FLOPs of the dense counterpart, determinism under a seed, the tokenizer's round trip and
// unknown words.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>

#include "gannet/autograd/contrastive_ops.h"
#include "gannet/autograd/ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"
#include "gannet/data/glyph_text_tokenizer.h"
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
