// `gannet bench -m MODEL`: prompt processing and generation speed of the inference engine, each
// beside its bound measured in the same run (memory bandwidth for generation, the fp32 GEMM peak
// for prompts).
#pragma once

namespace CLI {
class App;
}

namespace gannet::cli {

void add_bench_command(CLI::App& app);

}  // namespace gannet::cli
