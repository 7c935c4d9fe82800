// The weight-streaming options of the commands that run the inference engine (generate, serve,
// bench, eval): --offload none|disk, --max-resident-mb, --offload-dir (infer/streamed_weights.h).
#pragma once
#include <string>

#include "gannet/infer/engine.h"

namespace CLI {
class App;
}

namespace gannet::cli {

struct OffloadArgs {
  std::string offload = "none";
  double max_resident_mb = 0;
  std::string dir;  // default: the model's directory
};

void add_offload_options(CLI::App* cmd, OffloadArgs& a);

// Whether the options ask for streaming; throws on a combination that makes no sense.
bool offload_to_disk(const OffloadArgs& a);

// Sets o's streaming fields from the options; throws on a combination that makes no sense
// (--max-resident-mb or --offload-dir without --offload disk, or disk without a budget).
void apply_offload(const OffloadArgs& a, const std::string& model, infer::EngineOptions& o);

}  // namespace gannet::cli
