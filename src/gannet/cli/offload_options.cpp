#include "gannet/cli/offload_options.h"

#include <CLI/CLI.hpp>
#include <filesystem>

#include "gannet/core/error.h"

namespace gannet::cli {

void add_offload_options(CLI::App* cmd, OffloadArgs& a) {
  cmd->add_option("--offload", a.offload,
                  "where the weights live: none (in memory) or disk (kept in a file on disk and streamed layer by "
                  "layer through --max-resident-mb of buffers)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "disk"}));
  cmd->add_option("--max-resident-mb", a.max_resident_mb,
                  "--offload disk: MiB of weight buffers at most (at least two of the largest layer or LM head)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--offload-dir", a.dir,
                  "--offload disk: directory on disk for the streamed weights' file (unnamed, gone at exit; default: "
                  "the model's directory)")
      ->check(CLI::ExistingDirectory);
}

bool offload_to_disk(const OffloadArgs& a) {
  if (a.offload != "disk") {
    GANNET_CHECK(a.max_resident_mb == 0 && a.dir.empty(), "--max-resident-mb and --offload-dir need --offload disk");
    return false;
  }
  GANNET_CHECK(a.max_resident_mb > 0, "--offload disk needs --max-resident-mb (MiB of weight buffers)");
  return true;
}

void apply_offload(const OffloadArgs& a, const std::string& model, infer::EngineOptions& o) {
  if (!offload_to_disk(a)) return;
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(model);
  o.offload_disk = true;
  o.max_resident_bytes = (int64_t)(a.max_resident_mb * 1048576.0);
  o.offload_dir = !a.dir.empty()            ? a.dir
                  : fs::is_directory(p, ec) ? p.string()
                  : p.has_parent_path()     ? p.parent_path().string()
                                            : ".";
}

}  // namespace gannet::cli
