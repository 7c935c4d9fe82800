// `gannet compress --config FILE`: XTC extreme compression of a fine-tuned encoder classifier
// (a training config with "task": "xtc"; compress/xtc_config.h): distils a binary or ternary
// student through the training loop, then packs it into a low-bit model file
// (io/low_bit_encoder.h) and reports its size beside the teacher's and its accuracy run packed.
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

void add_compress_command(CLI::App& app);

}  // namespace gannet::cli
