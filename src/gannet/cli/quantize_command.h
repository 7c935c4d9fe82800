// `gannet quantize`: ZeroQuant post-training quantization of a GPT into a packed model file
// (int8/int4 integers and their scales), optionally refined by layer-by-layer distillation.
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

void add_quantize_command(CLI::App& app);

}  // namespace gannet::cli
