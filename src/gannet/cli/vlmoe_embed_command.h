// `gannet embed --model CKPT (--image-of CHAR | --text STRING)`: what a VL-MoE maps one image or
// text to (its L2-normalised ITC projection, train/vlmoe_embeddings.h), as one line of JSON.
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

void add_embed_command(CLI::App& app);

}  // namespace gannet::cli
