// The packed XTC classifier encoder (io/low_bit_encoder.h, compress/low_bit_encoder_pack.h): what
// is packed how, the file's round trip, its sizes, and the refusal of every corrupt, missing or
// extra tensor and of the other model formats.
#include <gtest/gtest.h>

#include <cstring>

#include "gannet/compress/low_bit_encoder_pack.h"
#include "gannet/io/checkpoint.h"
#include "gannet/io/encoder_checkpoint.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/io/low_bit_encoder.h"
#include "gannet/io/low_bit_file.h"
#include "gannet/io/safetensors.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
using compress::LowBitSpec;

namespace {

models::EncoderConfig tiny_config() {
  models::EncoderConfig c;
  c.vocab_size = 37;
  c.n_ctx = 12;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 48;  // padded to 64: the padding is exercised
  c.num_classes = 3;
  c.mlm_head = false;
  return c;
}

models::Encoder tiny_model(uint64_t seed = 7) {
  models::Encoder m(tiny_config());
  m.init(seed);
  return m;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

std::string one_line(const std::string& m) {
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  return m;
}

class LowBitEncoderTest : public TempDirTest {};

TEST(LowBitEncoderPack, QuantizesProductsAndEmbeddingsAndCopiesTheRest) {
  const models::Encoder m = tiny_model();
  const io::LowBitEncoder p = compress::pack_low_bit_encoder(m, {2, 32}, {2, 0}, "w2a8");
  EXPECT_EQ(p.config, m.config());
  EXPECT_EQ(p.scheme, "w2a8");
  ASSERT_EQ(p.low_bit.size(), 2u + 4u * 2u);
  for (const nn::Parameter& q : m.parameters()) {
    if (auto it = p.low_bit.find(q.name); it != p.low_bit.end()) {
      const bool embedding = q.name == "wte.weight" || q.name == "wpe.weight";
      const io::LowBitTensor expected =
          compress::quantize_low_bit(q.var.value(), embedding ? LowBitSpec{2, 0} : LowBitSpec{2, 32});
      EXPECT_TRUE(same_bytes(it->second.sign, expected.sign)) << q.name;
      EXPECT_TRUE(same_bytes(it->second.nonzero, expected.nonzero)) << q.name;
      EXPECT_TRUE(same_bytes(it->second.scale, expected.scale)) << q.name;
      EXPECT_EQ(it->second.group, embedding ? 64 : 32) << q.name;
    } else {
      ASSERT_TRUE(p.dense.count(q.name)) << q.name;
      EXPECT_TRUE(same_bytes(p.dense.at(q.name), q.var.value())) << q.name;
    }
  }
  EXPECT_TRUE(p.low_bit.count("wpe.weight"));
  EXPECT_TRUE(p.low_bit.count("h.1.mlp.c_proj.weight"));
  EXPECT_TRUE(p.dense.count("classifier.weight"));
  EXPECT_TRUE(p.dense.count("h.0.attn.c_attn.bias"));
}

TEST(LowBitEncoderPack, RefusesWhatDoesNotFit) {
  const models::Encoder m = tiny_model();
  EXPECT_TRUE(has(message_of([&] { compress::pack_low_bit_encoder(m, {2, 0}, {1, 0}, "w1a8"); }), "scheme w1a8 has 1"));
  EXPECT_TRUE(has(message_of([&] { compress::pack_low_bit_encoder(m, {1, 0}, {1, 32}, "w1a8"); }), "one per row"));
  EXPECT_TRUE(has(message_of([&] { compress::pack_low_bit_encoder(m, {1, 0}, {1, 0}, "w4a8"); }), "'w4a8' is not known"));
  EXPECT_TRUE(has(message_of([&] { compress::pack_low_bit_encoder(m, {1, 40}, {1, 0}, "w1a8"); }), "products"));
  models::EncoderConfig mlm = tiny_config();
  mlm.mlm_head = true;
  models::Encoder with_mlm(mlm);
  with_mlm.init(1);
  EXPECT_TRUE(has(message_of([&] { compress::pack_low_bit_encoder(with_mlm, {1, 0}, {1, 0}, "w1a8"); }),
                  "not a classifier"));
}

TEST_F(LowBitEncoderTest, RoundTripsExactly) {
  const models::Encoder m = tiny_model();
  for (const auto& [scheme, products] : {std::pair{"w1a8", LowBitSpec{1, 32}}, std::pair{"w2a8", LowBitSpec{2, 0}}}) {
    const io::LowBitEncoder p = compress::pack_low_bit_encoder(m, products, {products.bits, 0}, scheme);
    const std::string path = file(std::string(scheme) + ".safetensors");
    io::save_low_bit_encoder(path, p);
    const io::LowBitEncoder r = io::read_low_bit_encoder(path);
    EXPECT_EQ(r.config, p.config);
    EXPECT_EQ(r.scheme, scheme);
    ASSERT_EQ(r.low_bit.size(), p.low_bit.size());
    for (const auto& [name, t] : p.low_bit) {
      const io::LowBitTensor& u = r.low_bit.at(name);
      EXPECT_EQ(u.bits, t.bits);
      EXPECT_EQ(u.group, t.group);
      EXPECT_EQ(u.padded_in, t.padded_in);
      EXPECT_TRUE(same_bytes(u.sign, t.sign)) << name;
      EXPECT_TRUE(same_bytes(u.scale, t.scale)) << name;
      EXPECT_EQ(u.nonzero.defined(), t.ternary());
      if (t.ternary()) {
        EXPECT_TRUE(same_bytes(u.nonzero, t.nonzero)) << name;
      }
    }
    ASSERT_EQ(r.dense.size(), p.dense.size());
    for (const auto& [name, t] : p.dense) EXPECT_TRUE(same_bytes(r.dense.at(name), t)) << name;
    EXPECT_EQ(r.nbytes(), p.nbytes());
    const io::SafeTensors st = io::SafeTensors::open(path);
    EXPECT_TRUE(io::is_low_bit_encoder(st));
    EXPECT_EQ(st.metadata().at("model_type"), "encoder");
  }
}

TEST(LowBitEncoderSize, CountsEachPart) {
  const models::Encoder m = tiny_model();
  const models::EncoderConfig c = m.config();
  // Binary, products g32 (48 -> 64 columns, 2 groups; 192 -> 192, 6 groups), embeddings per row.
  const io::LowBitEncoder b = compress::pack_low_bit_encoder(m, {1, 32}, {1, 0}, "w1a8");
  auto plane_and_scales = [](int64_t rows, int64_t padded, int64_t groups, int planes) {
    return rows * padded / 8 * planes + rows * groups * 4;
  };
  const int64_t per_layer_bin = plane_and_scales(144, 64, 2, 1) + plane_and_scales(48, 64, 2, 1) +
                                plane_and_scales(192, 64, 2, 1) + plane_and_scales(48, 192, 6, 1);
  EXPECT_EQ(b.bytes().products, c.n_layer * per_layer_bin);
  EXPECT_EQ(b.bytes().embeddings, plane_and_scales(37, 64, 1, 1) + plane_and_scales(12, 64, 1, 1));
  // Dense f32: per layer 2 LayerNorms (2 x 2 x 48) and biases 144 + 48 + 192 + 48; ln_f; classifier.
  const int64_t dense_floats = c.n_layer * (4 * 48 + 144 + 48 + 192 + 48) + 2 * 48 + 3 * 48 + 3;
  EXPECT_EQ(b.bytes().dense, 4 * dense_floats);
  EXPECT_EQ(b.nbytes(), b.bytes().products + b.bytes().embeddings + b.bytes().dense);
  // Ternary per row: two planes, one scale per row.
  const io::LowBitEncoder t = compress::pack_low_bit_encoder(m, {2, 0}, {2, 0}, "w2a8");
  const int64_t per_layer_tern = plane_and_scales(144, 64, 1, 2) + plane_and_scales(48, 64, 1, 2) +
                                 plane_and_scales(192, 64, 1, 2) + plane_and_scales(48, 192, 1, 2);
  EXPECT_EQ(t.bytes().products, c.n_layer * per_layer_tern);
  EXPECT_EQ(t.bytes().embeddings, plane_and_scales(37, 64, 1, 2) + plane_and_scales(12, 64, 1, 2));
}

using Entries = std::vector<std::pair<std::string, Tensor>>;
using Meta = std::map<std::string, std::string>;

// Writes `p`'s entries and metadata as save_low_bit_encoder would, edited; returns the path.
std::string write_edited(const std::string& path, const io::LowBitEncoder& p, const std::function<void(Entries&)>& edit,
                         const std::function<void(nlohmann::json& quantization, nlohmann::json& config)>& edit_meta) {
  Entries entries;
  nlohmann::json q = io::low_bit_metadata(path, p.scheme, p.low_bit, entries);
  for (const auto& [name, t] : p.dense) entries.emplace_back(name, t);
  nlohmann::json config = io::encoder_config_to_json(p.config);
  edit(entries);
  edit_meta(q, config);
  io::save_safetensors(path, entries,
                       {{"quantization", q.dump()}, {"model_type", "encoder"}, {"model_config", config.dump()}});
  return path;
}

TEST_F(LowBitEncoderTest, CorruptMissingAndExtraTensorsAreRejectedNamingTheFile) {
  const io::LowBitEncoder p = compress::pack_low_bit_encoder(tiny_model(), {1, 32}, {1, 0}, "w1a8");
  auto erase = [](const std::string& name) {
    return [name](Entries& e) { std::erase_if(e, [&](auto& x) { return x.first == name; }); };
  };
  auto replace = [](const std::string& name, Tensor t) {
    return [name, t](Entries& e) {
      for (auto& [n, v] : e)
        if (n == name) v = t;
    };
  };
  auto none = [](Entries&) {};
  auto keep = [](nlohmann::json&, nlohmann::json&) {};
  auto unlist = [](const std::string& name) {
    return [name](nlohmann::json& q, nlohmann::json&) { q["weights"].erase(name); };
  };
  struct Case {
    const char* what;
    std::function<void(Entries&)> edit;
    std::function<void(nlohmann::json&, nlohmann::json&)> meta;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"missing dense", erase("h.1.ln_2.bias"), keep, "tensor 'h.1.ln_2.bias' is missing"},
      {"missing classifier", erase("classifier.weight"), keep, "tensor 'classifier.weight' is missing"},
      {"dense shape", replace("ln_f.bias", Tensor::zeros({47})), keep, "ln_f.bias"},
      {"dense dtype", replace("ln_f.bias", Tensor::zeros({48}, DType::bf16)), keep, "expected f32"},
      {"extra tensor", [](Entries& e) { e.emplace_back("mlm.bias", Tensor::zeros({37})); }, keep,
       "unknown tensor 'mlm.bias'"},
      {"extra part", [&](Entries& e) { e.emplace_back("wte.weight.nonzero", p.low_bit.at("wte.weight").sign); }, keep,
       "binary weights have a '.nonzero' plane"},
      {"missing low-bit weight",
       [](Entries& e) { std::erase_if(e, [](auto& x) { return x.first.starts_with("h.0.mlp.c_fc.weight."); }); },
       unlist("h.0.mlp.c_fc.weight"), "low-bit weight 'h.0.mlp.c_fc.weight' is missing"},
      {"missing embedding", [](Entries& e) { std::erase_if(e, [](auto& x) { return x.first.starts_with("wpe."); }); },
       unlist("wpe.weight"), "low-bit weight 'wpe.weight' is missing"},
      {"unlisted planes", none, unlist("h.0.mlp.c_fc.weight"), "unknown tensor 'h.0.mlp.c_fc.weight."},
      {"missing plane", erase("h.1.attn.c_proj.weight.scale"), keep, "'h.1.attn.c_proj.weight.scale' is missing"},
      {"dense stored low-bit",
       [&](Entries& e) {
         io::LowBitTensor t = compress::quantize_low_bit(Tensor::zeros({3, 48}), {1, 0});
         std::erase_if(e, [](auto& x) { return x.first == "classifier.weight"; });
         t.append_entries("classifier.weight", e);
       },
       [](nlohmann::json& q, nlohmann::json&) {
         q["weights"]["classifier.weight"] = compress::quantize_low_bit(Tensor::zeros({3, 48}), {1, 0}).metadata();
       },
       "unknown low-bit tensor 'classifier.weight'"},
      {"config layers", none, [](nlohmann::json&, nlohmann::json& c) { c["n_layer"] = 1; }, "unknown tensor 'h.1."},
      {"config width", none, [](nlohmann::json&, nlohmann::json& c) { c["n_embd"] = 32; }, "needs"},
      {"no classifier", none, [](nlohmann::json&, nlohmann::json& c) { c["num_classes"] = 0; c["mlm_head"] = true; },
       "a packed encoder is a classifier"},
      {"config key", none, [](nlohmann::json&, nlohmann::json& c) { c["n_embed"] = 48; }, "unknown key 'n_embed'"},
      {"scheme", none, [](nlohmann::json& q, nlohmann::json&) { q["scheme"] = "w2a8"; }, "scheme w2a8 has 2"},
      {"padding bit", replace("wte.weight.sign", [&] {
         Tensor s = p.low_bit.at("wte.weight").sign.clone();
         static_cast<uint8_t*>(s.raw())[7] |= 0x80;  // row 0, column 63 (of 48 real)
         return s;
       }()),
       keep, "padding column 63"},
  };
  for (const Case& c : cases) {
    const std::string path = write_edited(file("corrupt.safetensors"), p, c.edit, c.meta);
    const std::string m = one_line(message_of([&] { io::read_low_bit_encoder(path); }));
    EXPECT_TRUE(has(m, path)) << c.what << ": " << m;
    EXPECT_TRUE(has(m, c.message)) << c.what << ": " << m;
  }
  // A truncated file: the safetensors layer's error, naming the file.
  const std::string good = file("good.safetensors");
  io::save_low_bit_encoder(good, p);
  std::filesystem::resize_file(good, std::filesystem::file_size(good) - 3);
  EXPECT_TRUE(has(one_line(message_of([&] { io::read_low_bit_encoder(good); })), good));
  // Saving validates before writing anything.
  io::LowBitEncoder missing = p;
  missing.low_bit.erase("wte.weight");
  const std::string unwritten = file("unwritten.safetensors");
  EXPECT_TRUE(has(message_of([&] { io::save_low_bit_encoder(unwritten, missing); }), "'wte.weight' is missing"));
  io::LowBitEncoder extra = p;
  extra.dense["lm_head.weight"] = Tensor::zeros({37, 48});
  EXPECT_TRUE(has(message_of([&] { io::save_low_bit_encoder(unwritten, extra); }), "unknown dense tensor 'lm_head.weight'"));
  EXPECT_FALSE(std::filesystem::exists(unwritten));
}

TEST_F(LowBitEncoderTest, EachReaderRefusesTheOthersFilesByName) {
  const models::Encoder m = tiny_model();
  const std::string packed = file("packed.safetensors");
  io::save_low_bit_encoder(packed, compress::pack_low_bit_encoder(m, {1, 0}, {1, 0}, "w1a8"));
  const std::string refusal = "is a packed low-bit model (gannet-lowbit-1)";
  for (const auto& read : std::vector<std::function<void()>>{
           [&] { io::read_encoder_checkpoint_config(packed); },
           [&] {
             models::Encoder copy(m.config());
             io::load_encoder_checkpoint(packed, copy, nullptr, nullptr);
           },
           [&] { io::read_checkpoint_config(packed); },
           [&] { io::read_gpt_weights(packed); }}) {
    const std::string msg = one_line(message_of(read));
    EXPECT_TRUE(has(msg, packed) && has(msg, refusal)) << msg;
  }
  EXPECT_TRUE(has(message_of([&] { io::read_low_bit_file(packed); }), "is a packed low-bit encoder model"));

  const std::string checkpoint = file("encoder.safetensors");
  io::save_encoder_checkpoint(checkpoint, m, nullptr, {});
  EXPECT_TRUE(has(message_of([&] { io::read_low_bit_encoder(checkpoint); }), "it holds an f32 encoder checkpoint"));
  const std::string bare = file("bare.safetensors");
  io::save_low_bit_file(bare, io::LowBitFile{"w1a8", {{"w", compress::quantize_low_bit(Tensor::zeros({2, 32}), {1, 0})}}});
  EXPECT_TRUE(has(message_of([&] { io::read_low_bit_encoder(bare); }), "is a bare low-bit weight file"));
  const std::string gpt = file("gpt.safetensors");
  models::GptConfig gc;
  gc.vocab_size = 37;
  gc.n_ctx = 8;
  gc.n_layer = 1;
  gc.n_head = 2;
  gc.n_embd = 32;
  models::Gpt g(gc);
  g.init(1);
  io::save_checkpoint(gpt, g, nullptr, {});
  const std::string gpt_refused = message_of([&] { io::read_low_bit_encoder(gpt); });
  EXPECT_TRUE(has(gpt_refused, "a model of type 'gpt'")) << gpt_refused;
}

}  // namespace
