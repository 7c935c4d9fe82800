// `gannet data tasks` over a prepared directory: the input is docs.tsv, train.tok, val.tok and
// prepare.json joined by fuzz::kSplit; the tasks are cut with a window of 4 and read back.
#include <cstdint>

#include "fuzz_support.h"
#include "gannet/data/classification_tasks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gannet;
  const std::vector<std::string> parts = fuzz::split_input(data, size, 4);
  const auto dir = fuzz::scratch_dir() / "prepared";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  fuzz::write_file(dir / "docs.tsv", parts[0]);
  fuzz::write_file(dir / "train.tok", parts[1]);
  fuzz::write_file(dir / "val.tok", parts[2]);
  fuzz::write_file(dir / "prepare.json", parts[3]);
  fuzz::expect_clean_errors([&] {
    data::TasksOptions opt;
    opt.data_dir = dir.string();
    opt.window = 4;
    volatile int64_t sink = 0;
    for (const data::TaskSummary& t : data::write_classification_tasks(opt)) sink = sink + t.train.windows;
  });
  return 0;
}
