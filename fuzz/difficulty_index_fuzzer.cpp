// The difficulty index files `gannet data analyze` writes and curriculum training maps: the
// input is index_to_sample.bin, index_to_metric.bin and percentiles.bin, separated by kSplit lines.
#include <cstdint>

#include "fuzz_support.h"
#include "gannet/data/difficulty.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gannet;
  const std::vector<std::string> parts = fuzz::split_input(data, size, 3);
  const auto dir = fuzz::scratch_dir() / "difficulty";
  const std::string to_sample = fuzz::write_file(dir / "m_index_to_sample.bin", parts[0]);
  const std::string to_metric = fuzz::write_file(dir / "m_index_to_metric.bin", parts[1]);
  const std::string percentiles = fuzz::write_file(dir / "m_percentiles.bin", parts[2]);
  volatile double sink = 0;
  fuzz::expect_clean_errors([&] {
    const data::DifficultyIndex index = data::DifficultyIndex::open(to_sample, to_metric);
    for (int64_t i = 0; i < index.num_samples(); ++i) sink = sink + index.metric_values()[i] + index.sample_ids()[i];
    for (double p : {0.0, 1.0, 37.5, 100.0}) sink = sink + index.admitted_by_percentile(p);
    if (index.num_samples() > 0) sink = sink + index.admitted_by_value(index.metric_values()[index.num_samples() / 2]);
  });
  fuzz::expect_clean_errors([&] {
    for (double v : data::read_percentiles(percentiles)) sink = sink + v;
  });
  return 0;
}
