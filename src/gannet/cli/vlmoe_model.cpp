#include "gannet/cli/vlmoe_model.h"

#include <utf8proc.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "gannet/core/error.h"
#include "gannet/io/safetensors.h"
#include "gannet/io/vlmoe_checkpoint.h"

namespace gannet::cli {

namespace fs = std::filesystem;

bool is_vlmoe_model(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec) || fs::path(path).extension() != ".safetensors") return false;
  return io::checkpoint_model_type(io::SafeTensors::open(path)) == "vlmoe";
}

LoadedVlMoe load_vlmoe(const std::string& checkpoint, const std::string& tokenizer) {
  std::error_code ec;
  GANNET_CHECK(fs::is_regular_file(checkpoint, ec), "model ", checkpoint, " does not exist");
  const models::VlMoeConfig config = io::read_vlmoe_checkpoint_config(checkpoint);  // first: is it a VL-MoE
  const std::string tok = tokenizer.empty() ? (fs::path(checkpoint).parent_path() / "tokenizer.txt").string() : tokenizer;
  GANNET_CHECK(fs::is_regular_file(tok, ec), "no tokenizer ", tok,
               " (training writes it beside the checkpoint; give another with --tokenizer)");
  LoadedVlMoe m{std::make_unique<models::VlMoe>(config),
                data::GlyphTextTokenizer::load(tok)};
  io::load_vlmoe_checkpoint(checkpoint, *m.model, nullptr, nullptr);
  GANNET_CHECK(m.tokenizer.vocab_size() == m.model->config().vocab_size, tok, " has ", m.tokenizer.vocab_size(),
               " tokens, the model's vocabulary ", m.model->config().vocab_size);
  return m;
}

int32_t parse_glyph_spec(const std::string& spec) {
  if (spec.size() > 2 && (spec[0] == 'U' || spec[0] == 'u') && spec[1] == '+') {
    const std::string hex = spec.substr(2);
    GANNET_CHECK(hex.size() >= 4 && hex.size() <= 6 && hex.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos,
                 "'", spec, "' is not a code point (U+ and 4 to 6 hex digits, e.g. U+00EA)");
    const long cp = std::stol(hex, nullptr, 16);
    GANNET_CHECK(cp <= 0x10FFFF, "'", spec, "' is beyond the last code point U+10FFFF");
    return (int32_t)cp;
  }
  utf8proc_int32_t cp = -1;
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(spec.data());
  const utf8proc_ssize_t used = spec.empty() ? 0 : utf8proc_iterate(bytes, (utf8proc_ssize_t)spec.size(), &cp);
  GANNET_CHECK(used > 0 && (size_t)used == spec.size() && cp >= 0, "'", spec,
               "' is not one character (give one UTF-8 character or a code point such as U+00EA)");
  return cp;
}

std::string code_point_str(int32_t code_point) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", (unsigned)code_point);
  return buf;
}

GlyphSplit load_glyph_split_with_code_points(const std::string& dir, const std::string& split) {
  GlyphSplit s{data::load_glyph_split(dir, split), {}};
  const std::string path = dir + "/" + split + ".safetensors";
  const Tensor cp = io::SafeTensors::open(path).get("code_point", DType::i32, {s.set.size()});
  s.code_points.assign(cp.data<int32_t>(), cp.data<int32_t>() + cp.numel());
  return s;
}

Glyph find_glyph(const std::string& dir, int32_t code_point) {
  std::error_code ec;
  GANNET_CHECK(fs::is_directory(dir, ec), "glyph data directory ", dir,
               " does not exist (make one with `gannet data prepare --dataset glyphs`)");
  for (const char* split : {"train", "test_chars", "test_blocks"}) {
    const GlyphSplit s = load_glyph_split_with_code_points(dir, split);
    for (size_t i = 0; i < s.code_points.size(); ++i) {
      if (s.code_points[i] != code_point) continue;
      const int64_t S = s.set.images.dim(1), W = s.set.images.dim(2);
      Glyph g{code_point, s.set.names[i], split, Tensor::empty({1, S, W}, DType::u8)};
      std::memcpy(g.image.data<uint8_t>(), s.set.images.data<uint8_t>() + (int64_t)i * S * W, (size_t)(S * W));
      return g;
    }
  }
  fail(str(code_point_str(code_point), " is not a glyph of ", dir,
           " (its pairs leave out unnamed, unassigned and CJK unified characters)"));
}

}  // namespace gannet::cli
