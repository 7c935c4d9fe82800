// Every config shipped in configs/ reads: a change to what a config may say (a key made an error,
// a range narrowed) must come with the configs that use it changed too. A config whose teacher or
// init checkpoint is a run not trained here has its compression section read on its own.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "gannet/compress/nm_config.h"
#include "gannet/compress/xtc_config.h"
#include "gannet/core/atomic_file.h"
#include "gannet/io/json_config.h"
#include "gannet/train/train_config.h"
#include "test_files.h"

using namespace gannet;
using gannet::testing::error_or_empty;

namespace {
std::vector<std::string> shipped_configs() {
  const std::filesystem::path dir = std::filesystem::path(GANNET_TESTS_DIR).parent_path() / "configs";
  std::vector<std::string> paths;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().extension() == ".json") paths.push_back(entry.path().string());
  std::sort(paths.begin(), paths.end());
  return paths;
}

// The error of reading `path`'s compression section alone ("" when it reads, or it has none).
std::string compression_section_error(const std::string& path) {
  return error_or_empty([&] {
    const nlohmann::json doc = io::parse_json_text(read_file(path), path);
    const io::JsonReader r(doc, path);
    const std::string task = r.get_string("task", "lm");
    const int64_t steps = r.get_int<int64_t>("train_steps", 1, 1);
    if (task == "xtc") compress::read_xtc_config(doc, r, steps);
    if (task == "nxm" || task == "nxm_lm") compress::read_nm_config(doc, r, steps, task == "nxm_lm");
  });
}
}  // namespace

TEST(ShippedConfigs, EveryConfigReads) {
  const std::vector<std::string> paths = shipped_configs();
  ASSERT_GT(paths.size(), 10u);
  int whole = 0;
  for (const std::string& path : paths) {
    const std::string error = error_or_empty([&] { train::read_train_config(path); });
    if (error.rfind("cannot open runs/", 0) == 0 && error.find("checkpoint.safetensors") != std::string::npos) {
      EXPECT_EQ(compression_section_error(path), "") << path;
    } else {
      EXPECT_EQ(error, "") << path;
      ++whole;
    }
  }
  EXPECT_GT(whole, 0);
}
