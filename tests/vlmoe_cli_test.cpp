// The VL-MoE commands as a user runs them on a tiny trained model: `gannet eval` prints what
// train::evaluate_vlmoe computes, `moe-stats` counts every image and text token once per MoE layer,
// `embed` prints the normalised ITC projection and `search` ranks by the cosine computed here
// directly from the model; bad input is one error line and a non-zero exit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "command_output.h"
#include "gannet/autograd/tape.h"
#include "gannet/data/glyph_batches.h"
#include "gannet/data/glyph_pairs.h"
#include "gannet/io/vlmoe_checkpoint.h"
#include "gannet/train/evaluate_vlmoe.h"
#include "gannet/train/trainer.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
namespace fs = std::filesystem;

namespace {

// A synthetic glyph set through the data module's preparation: the 52 Latin letters of Basic Latin
// and ten letters of Latin-1 Supplement, each with its own pseudo-random 8x16 bitmap; Latin-1
// Supplement is held out whole (test_blocks), a fifth of the rest as test_chars. A tiny VL-MoE
// (2 experts, top-1) is trained on it once for the suite.
class VlMoeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::path(::testing::TempDir()) / str("gannet_VlMoeCli_", ::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write_glyph_sources();
    data::GlyphsOptions o;
    o.out_dir = file("glyphs");
    o.unifont_hex = file("unifont.hex");
    o.unicode_data = file("UnicodeData.txt");
    o.blocks = file("Blocks.txt");
    o.split.block_fraction = 0.2;
    o.split.char_fraction = 0.2;
    data::prepare_glyphs(o);
    train::TrainOptions t;
    t.progress = false;
    train::run_training(train::parse_train_config(config(), "test config"), t);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static void write_glyph_sources() {
    std::string unicode_data, hex;
    uint64_t bits = 0x9E3779B97F4A7C15ull;
    auto add = [&](int cp, const std::string& name) {
      char code[8];
      std::snprintf(code, sizeof code, "%04X", cp);
      unicode_data += str(code, ";", name, ";Lu;0;L;;;;;N;;;;;\n");
      std::string bitmap;
      for (int d = 0; d < 32; ++d) {
        bits = bits * 6364136223846793005ull + 1442695040888963407ull;
        bitmap += "0123456789ABCDEF"[bits >> 60];
      }
      hex += str(code, ":", bitmap, "\n");
    };
    for (int k = 0; k < 26; ++k) add(0x41 + k, str("LATIN CAPITAL LETTER ", (char)('A' + k)));
    for (int k = 0; k < 26; ++k) add(0x61 + k, str("LATIN SMALL LETTER ", (char)('A' + k)));
    for (int k = 0; k < 10; ++k) add(0xC0 + k, str("LATIN CAPITAL LETTER ", (char)('A' + k), " WITH GRAVE"));
    write(file("unifont.hex"), hex);
    write(file("UnicodeData.txt"), unicode_data);
    write(file("Blocks.txt"), "0000..007F; Basic Latin\n0080..00FF; Latin-1 Supplement\n");
  }

  static std::string config() {
    return str(R"({"task": "vlmoe", "model": {"image_size": 16, "patch_size": 8, "text_ctx": 8, "n_layer": 2,
      "n_vl_layer": 1, "n_head": 2, "n_embd": 16, "proj_dim": 8, "moe": {"num_experts": 2, "k": 1}},
      "data": {"dir": ")", file("glyphs"), R"("}, "train_micro_batch_size_per_gpu": 8, "train_steps": 150,
      "optimizer": {"type": "AdamW", "params": {"lr": 0.003}},
      "scheduler": {"type": "WarmupCosineLR", "params": {"warmup_num_steps": 2}},
      "eval": {"interval": 0, "batches": 0}, "checkpoint": {"dir": ")", file("run"), R"("}, "seed": 5, "threads": 1})");
  }

  static std::string file(const std::string& name) { return (dir_ / name).string(); }
  static std::string ckpt() { return file("run/checkpoint.safetensors"); }

  static models::VlMoe load_model() {
    models::VlMoe m(io::read_vlmoe_checkpoint_config(ckpt()));
    io::load_vlmoe_checkpoint(ckpt(), m, nullptr, nullptr);
    return m;
  }

  static std::pair<int, std::string> gannet(const std::string& args) {
    return command_status(str(GANNET_BINARY, " ", args, " -t 1 2>&1"));
  }

  static fs::path dir_;
};
fs::path VlMoeCli::dir_;

// The ITC projection of a pooled vector, L2-normalised here in double.
std::vector<double> unit(const Tensor& row) {
  double n = 0;
  for (int64_t i = 0; i < row.numel(); ++i) n += (double)row.f32()[i] * row.f32()[i];
  std::vector<double> v;
  for (int64_t i = 0; i < row.numel(); ++i) v.push_back(row.f32()[i] / std::sqrt(n));
  return v;
}

std::vector<double> image_vector(const models::VlMoe& m, const data::GlyphSet& set, int64_t i) {
  autograd::NoGrad no_grad;
  const data::GlyphBatch b = data::make_glyph_batch(set, data::GlyphTextTokenizer::build(set.names), {i}, 8);
  return unit(m.image_projection(m.forward({b.images, {}, {}}).image_pooled).value());
}

std::vector<double> text_vector(const models::VlMoe& m, const data::GlyphTextTokenizer& tok, const std::string& text) {
  autograd::NoGrad no_grad;
  Tensor tokens, mask;
  tok.encode_batch({text}, m.config().text_ctx, tokens, mask);
  return unit(m.text_projection(m.forward({{}, tokens, mask}).text_pooled).value());
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

TEST_F(VlMoeCli, EvalPrintsEvaluateVlmoesFiguresOnBothHeldOutSplits) {
  const auto [rc, out] = gannet(str("eval --model ", ckpt(), " --data ", file("glyphs"), " --batch 4"));
  ASSERT_EQ(rc, 0) << out;
  const models::VlMoe m = load_model();
  const data::GlyphTextTokenizer tok = data::GlyphTextTokenizer::load(file("run/tokenizer.txt"));
  for (const std::string split : {"test_chars", "test_blocks"}) {
    const data::GlyphSet set = data::load_glyph_split(file("glyphs"), split);
    ASSERT_GT(set.size(), 0) << split;
    const train::VlMoeEval e = train::evaluate_vlmoe(m, set, tok, 4, 0);
    char line[200];
    std::snprintf(line, sizeof line, "%-12s %6ld %8.4f %7.2f%% %7.2f%% %7.2f%% %7.2f%%", split.c_str(), (long)e.pairs,
                  e.loss, 100 * e.recall.i2t_r1, 100 * e.recall.i2t_r5, 100 * e.recall.t2i_r1, 100 * e.recall.t2i_r5);
    EXPECT_TRUE(has(out, line)) << line << "\nin:\n" << out;
  }
}

TEST_F(VlMoeCli, MoeStatsCountsEveryImageAndTextTokenOncePerMoeLayer) {
  const std::string json = file("stats.json"), chart = file("stats.svg");
  const auto [rc, out] = gannet(str("moe-stats ", ckpt(), " ", file("glyphs"), " --split test_chars --batch 3 --json ",
                                    json, " --chart ", chart));
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(has(out, "image share")) << out;
  EXPECT_TRUE(fs::exists(file("stats.image.svg")) && fs::exists(file("stats.text.svg"))) << out;
  const models::VlMoe m = load_model();
  const data::GlyphSet set = data::load_glyph_split(file("glyphs"), "test_chars");
  const data::GlyphTextTokenizer tok = data::GlyphTextTokenizer::load(file("run/tokenizer.txt"));
  Tensor tokens, mask;
  tok.encode_batch(set.names, m.config().text_ctx, tokens, mask);
  int64_t text_tokens = 0;
  for (int64_t i = 0; i < mask.numel(); ++i) text_tokens += mask.data<uint8_t>()[i];
  const nlohmann::json j = nlohmann::json::parse(read_file(json));
  EXPECT_EQ(j["pairs"].get<int64_t>(), set.size());
  EXPECT_EQ(j["text_tokens"].get<int64_t>(), text_tokens);
  EXPECT_TRUE(has(out, str(set.size(), " texts of at most 8 tokens (", text_tokens, " in all)"))) << out;
  ASSERT_EQ(j["modality"].size(), 1u) << "one lower block, an MoE block";
  for (const auto& layer : j["modality"]) {
    int64_t image = 0, text = 0;
    ASSERT_EQ(layer["experts"].size(), 4u) << "two V-MoE experts, then two T-MoE experts";
    for (const auto& e : layer["experts"]) {
      const int64_t i = e["image_tokens"].get<int64_t>(), t = e["text_tokens"].get<int64_t>();
      image += i;
      text += t;
      const bool vision = has(e["expert"].get<std::string>(), "V-MoE");
      EXPECT_EQ(vision ? t : i, 0) << e.dump() << ": modality-specific experts";
      EXPECT_DOUBLE_EQ(e["image_share"].get<double>(), vision && i > 0 ? 1.0 : 0.0);
    }
    EXPECT_EQ(image, set.size() * m.config().image_tokens()) << "top-1: each image token chooses one expert";
    EXPECT_EQ(text, text_tokens) << "only real text tokens are routed";
  }
}

TEST_F(VlMoeCli, EmbedPrintsTheNormalisedProjection) {
  const models::VlMoe m = load_model();
  const data::GlyphTextTokenizer tok = data::GlyphTextTokenizer::load(file("run/tokenizer.txt"));
  const auto [rc, out] = gannet(str("embed --model ", ckpt(), " --data ", file("glyphs"), " --text 'LATIN SMALL LETTER Q'"));
  ASSERT_EQ(rc, 0) << out;
  const nlohmann::json j = nlohmann::json::parse(out);
  const std::vector<double> want = text_vector(m, tok, "LATIN SMALL LETTER Q");
  ASSERT_EQ(j["vector"].size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(j["vector"][i].get<double>(), want[i], 1e-5) << i;

  // The image of a glyph, by character or by code point, whichever split holds it.
  const auto [rc2, by_char] = gannet(str("embed --model ", ckpt(), " --data ", file("glyphs"), " --image-of q"));
  const auto [rc3, by_code] = gannet(str("embed --model ", ckpt(), " --data ", file("glyphs"), " --image-of U+0071"));
  ASSERT_EQ(rc2, 0) << by_char;
  EXPECT_EQ(by_char, by_code);
  const nlohmann::json g = nlohmann::json::parse(by_char);
  EXPECT_EQ(g["name"], "LATIN SMALL LETTER Q");
  const data::GlyphSet set = data::load_glyph_split(file("glyphs"), g["split"].get<std::string>());
  const auto at = std::find(set.names.begin(), set.names.end(), "LATIN SMALL LETTER Q") - set.names.begin();
  const std::vector<double> image = image_vector(m, set, at);
  for (size_t i = 0; i < image.size(); ++i) EXPECT_NEAR(g["vector"][i].get<double>(), image[i], 1e-5) << i;
}

TEST_F(VlMoeCli, SearchRanksBytheCosineComputedDirectly) {
  const models::VlMoe m = load_model();
  const data::GlyphTextTokenizer tok = data::GlyphTextTokenizer::load(file("run/tokenizer.txt"));
  const data::GlyphSet set = data::load_glyph_split(file("glyphs"), "test_blocks");
  // A text against every image of the split.
  const std::vector<double> q = text_vector(m, tok, "LATIN CAPITAL LETTER C WITH GRAVE");
  std::vector<double> cos;
  for (int64_t i = 0; i < set.size(); ++i) cos.push_back(dot(q, image_vector(m, set, i)));
  const size_t best = std::max_element(cos.begin(), cos.end()) - cos.begin();
  const auto [rc, out] = gannet(str("search --model ", ckpt(), " --data ", file("glyphs"),
                                    " --split test_blocks -k 3 --text 'LATIN CAPITAL LETTER C WITH GRAVE'"));
  ASSERT_EQ(rc, 0) << out;
  std::istringstream lines(out);
  std::string header, rank, code;
  double cosine = 0;
  std::getline(lines, header);
  lines >> rank >> cosine >> code;
  EXPECT_EQ(rank, "1");
  EXPECT_NEAR(cosine, cos[best], 2e-6) << out;
  EXPECT_TRUE(has(out, "  " + set.names[best] + "\n")) << set.names[best] << " in:\n" << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 4) << out;

  // An image against every text: the top cosine is the best over the split's names.
  const auto [rc2, out2] = gannet(str("search --model ", ckpt(), " --data ", file("glyphs"),
                                      " --split test_blocks -k 1 --image-of U+00C2"));
  ASSERT_EQ(rc2, 0) << out2;
  const std::vector<double> img = image_vector(m, set, 2);
  ASSERT_EQ(set.names[2], "LATIN CAPITAL LETTER C WITH GRAVE");
  double top = -2;
  for (const std::string& name : set.names) top = std::max(top, dot(img, text_vector(m, tok, name)));
  std::istringstream l2(out2);
  std::getline(l2, header);
  l2 >> rank >> cosine;
  EXPECT_NEAR(cosine, top, 2e-6) << out2;
}

TEST_F(VlMoeCli, BadInputIsOneErrorLineAndAFailure) {
  const std::string base = str("--model ", ckpt(), " --data ", file("glyphs"));
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {"embed " + base + " --image-of U+0030", "U+0030 is not a glyph of"},
           {"embed " + base + " --image-of AB", "'AB' is not one character"},
           {"embed " + base + " --image-of U+12", "'U+12' is not a code point"},
           {"search " + base + " --text A --image-of A", "--image-of"},
           {"embed " + base, "--image-of,--text"},
           {"embed --model " + file("nothing.safetensors") + " --text A", "does not exist"},
           {"embed --model " + file("glyphs/train.safetensors") + " --text A", "vlmoe"},
           {"search " + base + " --split test_charz --text A", "test_charz"},
           {str("eval --model ", ckpt(), " --data ", file("glyphs/train.jsonl")), "glyph data directory"},
           {str("moe-stats ", ckpt(), " ", file("glyphs"), " --seq-len 4"), "--seq-len is for GPT-MoE models"},
           {str("eval --model ", file("glyphs/train.safetensors"), " --data ", file("glyphs")), "is a directory"},
           {str("moe-stats ", file("glyphs/train.safetensors"), " ", file("glyphs"), " --split test_chars"),
            "--split is for VL-MoE models"}}) {
    const auto [rc, out] = gannet(args);
    EXPECT_NE(rc, 0) << args;
    EXPECT_TRUE(has(out, message)) << args << ":\n" << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << args << ":\n" << out;
  }
}
