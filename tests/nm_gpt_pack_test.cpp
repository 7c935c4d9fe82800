// Task nxm_lm's packed GPT file (compress/nm_gpt_pack.h): the forms become the ZeroQuant scheme
// that quantizes the same way, checked against the preset built independently.
#include <gtest/gtest.h>

#include "engine_test_util.h"
#include "gannet/compress/nm_gpt_pack.h"
#include "gannet/core/error.h"
#include "gannet/infer/engine.h"

using namespace gannet;
using namespace gannet::testing;
namespace c = gannet::compress;

namespace {
io::GptWeights float_model(uint64_t seed) {
  models::Gpt m(small_config(53, 32, 2, 64));
  m.init(seed);
  io::GptWeights w;
  w.config = m.config();
  for (const auto& p : m.parameters()) w.tensors[p.name] = p.var.value().clone();
  return w;
}

std::vector<std::array<c::NmProductForm, 4>> uniform_forms(int64_t layers, int bits, io::ActivationQuant input) {
  c::NmProductForm f;
  f.quant.bits = bits;
  f.quant.group = 32;
  f.quant.symmetric = true;
  f.input = input;
  std::vector<std::array<c::NmProductForm, 4>> forms((size_t)layers);
  for (auto& l : forms) l.fill(f);
  return forms;
}

std::vector<float> logits(const io::GptWeights& w, const std::vector<int32_t>& ids) {
  infer::Engine e(w, {});
  std::vector<float> out(ids.size() * (size_t)w.config.vocab_size);
  e.forward_all({0, ids}, out.data());
  return out;
}
}  // namespace

// Dense int4 forms with int4 inputs (symmetric and asymmetric) pack exactly as the w4a4 preset with
// an f32 embedding and head: the same logits, bitwise, and the same recorded inputs.
TEST(NmGptPack, DenseFormsPackAsTheMatchingPreset) {
  const io::GptWeights fp = float_model(2);
  const auto ids = random_ids(20, 53, 4);
  for (bool asym : {false, true}) {
    const io::GptWeights got =
        c::pack_dense_gpt_student(fp, uniform_forms(fp.config.n_layer, 4, io::ActivationQuant{true, 0.f, 4, asym}));
    c::SchemeOptions o = options(32, true);
    o.embedding = "f32";
    o.lm_head = "f32";
    o.asymmetric_activations = asym;
    const io::GptWeights want = c::quantize_model(fp, c::scheme_preset("w4a4", o));
    EXPECT_EQ(got.quantized.size(), want.quantized.size());
    for (const auto& [name, t] : want.quantized) EXPECT_EQ(got.activation(name), want.activation(name)) << name;
    EXPECT_EQ(logits(got, ids), logits(want, ids)) << "asym " << asym;
  }
}

// Mixed inputs per product (A8 attention, A4 MLP; int8 weights in the MLP) are recorded per product.
TEST(NmGptPack, EachProductKeepsItsForm) {
  const io::GptWeights fp = float_model(3);
  auto forms = uniform_forms(fp.config.n_layer, 4, io::ActivationQuant{true});
  for (auto& l : forms) {
    l[2].input = l[3].input = io::ActivationQuant{true, 0.f, 4, false};
    l[3].quant.bits = 8;
  }
  const io::GptWeights q = c::pack_dense_gpt_student(fp, forms);
  for (int64_t l = 0; l < fp.config.n_layer; ++l) {
    EXPECT_EQ(q.activation(str("h.", l, ".attn.c_attn.weight")).bits, 8);
    EXPECT_EQ(q.activation(str("h.", l, ".mlp.c_fc.weight")).bits, 4);
    EXPECT_EQ(q.quantized.at(str("h.", l, ".mlp.c_fc.weight")).bits, 4);
    EXPECT_EQ(q.quantized.at(str("h.", l, ".mlp.c_proj.weight")).bits, 8);
  }
  EXPECT_FALSE(q.quantized.count("wte.weight"));
}

TEST(NmGptPack, RefusesWhatAGptFileCannotHold) {
  const io::GptWeights fp = float_model(4);
  auto sparse = uniform_forms(fp.config.n_layer, 8, io::ActivationQuant{true});
  sparse[1][0].pattern = NmPattern{2, 4};
  EXPECT_THROW(c::pack_dense_gpt_student(fp, sparse), Error);
  auto mixed = uniform_forms(fp.config.n_layer, 4, io::ActivationQuant{true, 0.f, 4, false});
  mixed[0][3].input.asymmetric = true;
  EXPECT_THROW(c::pack_dense_gpt_student(fp, mixed), Error);
  EXPECT_THROW(c::pack_dense_gpt_student(fp, uniform_forms(1, 4, io::ActivationQuant{true})), Error);
}
