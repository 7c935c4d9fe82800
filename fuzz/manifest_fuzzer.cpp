// Sharded checkpoints: the manifest and its shard files, reassembled by the sharded reader and
// loaded as a model. The input is manifest.json, then (after each kSplit line) the shard files in the
// order of the manifest's "shards" list, written where the manifest says.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "fuzz_support.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/io/sharded_checkpoint.h"

namespace {

constexpr size_t kMaxShards = 4;

// The k-th shard path the manifest names, when it is a plain relative path; "" otherwise (the
// harness writes only inside its own directory).
std::string shard_file(const std::string& manifest, size_t k) {
  try {
    const auto j = nlohmann::json::parse(manifest);
    const std::string f = j.at("shards").at(k).at("file").get<std::string>();
    const std::filesystem::path p(f);
    if (f.empty() || p.is_absolute() || f.find("..") != std::string::npos) return "";
    return f;
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gannet;
  const std::vector<std::string> parts = fuzz::split_input(data, size, 1 + kMaxShards);
  const std::filesystem::path dir = fuzz::scratch_dir() / "ck";
  std::filesystem::remove_all(dir);
  const std::string manifest = fuzz::write_file(dir / io::kManifestFile, parts[0]);
  for (size_t k = 0; k < kMaxShards; ++k) {
    const std::string f = shard_file(parts[0], k);
    if (!f.empty() && !parts[1 + k].empty()) fuzz::write_file(dir / f, parts[1 + k]);
  }
  fuzz::expect_clean_errors([&] { io::parse_manifest(parts[0], "manifest.json"); });
  fuzz::expect_clean_errors([&] { io::read_sharded_checkpoint(dir.string()); });
  fuzz::expect_clean_errors([&] { io::read_gpt_weights(manifest); });
  return 0;
}
