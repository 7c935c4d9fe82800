// `gannet search --model CKPT (--text STRING | --image-of CHAR)`: retrieval by hand with a VL-MoE.
// A text finds the nearest images of a glyph split, an image the nearest texts (the split's glyph
// names), by the cosine of their ITC projections, as the retrieval figures rank them.
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

void add_search_command(CLI::App& app);

}  // namespace gannet::cli
