// Token files (GNTOK001) and what `gannet data analyze` computes over them. The input is the file.
#include <cstdint>

#include "fuzz_support.h"
#include "gannet/data/difficulty.h"
#include "gannet/data/token_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gannet;
  const std::string path = fuzz::write_file(fuzz::scratch_dir() / "tokens.tok", {reinterpret_cast<const char*>(data), size});
  fuzz::expect_clean_errors([&] {
    const data::TokenFile f = data::TokenFile::open(path);
    volatile int64_t sink = 0;
    const std::vector<int32_t> all = f.read(0, f.size());
    for (int32_t t : all) sink = sink + t;
    if (f.size() > 0) sink = sink + f.at(f.size() - 1);
    fuzz::expect_clean_errors([&] { sink = sink + (int64_t)data::unigram_neg_log_p(f).size(); });
    for (int64_t seq_len : {1, 4}) {
      fuzz::expect_clean_errors([&] { sink = sink + data::difficulty_sample_count(f, seq_len); });
      for (const std::string& metric : data::difficulty_metric_names())
        fuzz::expect_clean_errors([&] { sink = sink + (int64_t)data::compute_difficulty(f, seq_len, metric).size(); });
    }
  });
  return 0;
}
