// The query of `gannet embed` and `gannet search`: an image (a glyph of the data directory, by
// character or code point) or a text, with the options that name it and its embedding
// (train/vlmoe_embeddings.h).
#pragma once
#include <string>

#include "gannet/cli/vlmoe_model.h"

namespace CLI {
class App;
}

namespace gannet::cli {

struct VlMoeQueryArgs {
  std::string model, tokenizer, data = "data/glyphs";
  std::string image_of, text;  // exactly one is given
};

// --model, --tokenizer, --data, --image-of and --text (one of the last two required, not both).
void add_vlmoe_query_options(CLI::App* cmd, VlMoeQueryArgs& args);

struct VlMoeQuery {
  bool image = false;  // an image query (else a text)
  Glyph glyph;         // the image's glyph
  std::string text;
  Tensor vector;  // f32 [1, proj_dim], L2-normalised
};
VlMoeQuery embed_query(const LoadedVlMoe& model, const VlMoeQueryArgs& args);

}  // namespace gannet::cli
