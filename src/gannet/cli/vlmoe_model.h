// What the VL-MoE commands share: a trained checkpoint (model_type "vlmoe") with the tokenizer its
// run wrote beside it, and glyphs of a prepared data directory picked by character or code point.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gannet/data/glyph_batches.h"
#include "gannet/data/glyph_text_tokenizer.h"
#include "gannet/models/vlmoe.h"

namespace gannet::cli {

// The held-out glyph splits, in the order `gannet eval` prints them.
inline const std::vector<std::string> kGlyphEvalSplits = {"test_chars", "test_blocks"};

// Whether `path` is a checkpoint of model type "vlmoe".
bool is_vlmoe_model(const std::string& path);

struct LoadedVlMoe {
  std::unique_ptr<models::VlMoe> model;
  data::GlyphTextTokenizer tokenizer;
};
// The checkpoint's weights and the tokenizer (default: tokenizer.txt in the checkpoint's directory,
// where training writes it). One-line errors for a missing file or another model type.
LoadedVlMoe load_vlmoe(const std::string& checkpoint, const std::string& tokenizer = "");

// A code point from "U+XXXX" (4 to 6 hex digits) or a single UTF-8 character ("é"); throws otherwise.
int32_t parse_glyph_spec(const std::string& spec);
std::string code_point_str(int32_t code_point);  // "U+00EA"

// One glyph of a prepared data directory.
struct Glyph {
  int32_t code_point = 0;
  std::string name, split;
  Tensor image;  // u8 [1, S, S]
};
// Looks in train, test_chars and test_blocks; throws naming the code point when no split has it.
Glyph find_glyph(const std::string& dir, int32_t code_point);
// A split's pairs with their code points (same order).
struct GlyphSplit {
  data::GlyphSet set;
  std::vector<int32_t> code_points;
};
GlyphSplit load_glyph_split_with_code_points(const std::string& dir, const std::string& split);

}  // namespace gannet::cli
