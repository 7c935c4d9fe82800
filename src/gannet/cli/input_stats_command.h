// `gannet input-stats -m MODEL --calib FILE`: what the inputs of a GPT's block products look like on
// calibration text (compress/input_statistics.h): outlier channels, how one-sided the tokens are,
// and the error token-wise int8, int4 and asymmetric int4 quantization leave (the INT4 paper's
// decoder analysis; scripts/int4_decoder_study.sh prints it beside the perplexities).
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

void add_input_stats_command(CLI::App& app);

}  // namespace gannet::cli
