#include "gannet/cli/vlmoe_query.h"

#include <CLI/CLI.hpp>

#include "gannet/core/error.h"
#include "gannet/train/vlmoe_embeddings.h"

namespace gannet::cli {

void add_vlmoe_query_options(CLI::App* cmd, VlMoeQueryArgs& a) {
  cmd->add_option("--model,-m", a.model, "VL-MoE checkpoint (.safetensors, model_type vlmoe)")->required();
  cmd->add_option("--tokenizer", a.tokenizer, "the run's text tokenizer (default: tokenizer.txt beside the model)");
  cmd->add_option("--data,-d", a.data, "glyph data directory (from `gannet data prepare --dataset glyphs`)")
      ->capture_default_str();
  CLI::Option_group* query = cmd->add_option_group("query", "exactly one of");
  query->add_option("--image-of", a.image_of,
                    "the image of this glyph: one character (e.g. é) or a code point (e.g. U+00EA)");
  query->add_option("--text", a.text, "a text, e.g. \"LATIN SMALL LETTER E WITH CIRCUMFLEX\"");
  query->require_option(1);
}

VlMoeQuery embed_query(const LoadedVlMoe& m, const VlMoeQueryArgs& a) {
  VlMoeQuery q;
  q.image = !a.image_of.empty();
  if (q.image) {
    q.glyph = find_glyph(a.data, parse_glyph_spec(a.image_of));
    GANNET_CHECK(q.glyph.image.dim(1) == m.model->config().image_size, a.data, " holds ", q.glyph.image.dim(1),
                 "-pixel images; the model takes ", m.model->config().image_size);
    q.vector = train::embed_images(*m.model, q.glyph.image);
  } else {
    GANNET_CHECK(!a.text.empty(), "--text is empty");
    q.text = a.text;
    q.vector = train::embed_texts(*m.model, m.tokenizer, {a.text});
  }
  return q;
}

}  // namespace gannet::cli
