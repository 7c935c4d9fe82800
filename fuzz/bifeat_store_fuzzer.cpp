// `gannet graph compress`'s output, the BiFeat feature store: the input is the file. It is opened
// (every check of BiFeatStore::open), then its first nodes (up to kMaxNodes) and its last one are
// gathered through the fused decode, and one node id past the end must be refused.
#include <algorithm>
#include <cstdint>
#include <numeric>

#include "fuzz_support.h"
#include "gannet/gnn/feature_store.h"

namespace {

constexpr int64_t kChunk = 256;      // nodes gathered at once
constexpr int64_t kMaxNodes = 4096;  // first nodes gathered (a small file can map many nodes)

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gannet;
  const std::string path = fuzz::write_file(fuzz::scratch_dir() / "features.bifeat.safetensors",
                                            {reinterpret_cast<const char*>(data), size});
  fuzz::expect_clean_errors([&] {
    const gnn::BiFeatStore store = gnn::BiFeatStore::open(path);
    const int64_t n = store.num_nodes();
    std::vector<int32_t> ids((size_t)kChunk);
    std::vector<float> rows((size_t)(kChunk * store.dim()));
    volatile float sink = 0;
    for (int64_t v0 = 0; v0 < std::min(n, kMaxNodes); v0 += kChunk) {
      const int64_t count = std::min(kChunk, std::min(n, kMaxNodes) - v0);
      std::iota(ids.begin(), ids.begin() + count, (int32_t)v0);
      store.gather(ids.data(), count, rows.data());
      for (int64_t i = 0; i < count * store.dim(); ++i) sink = sink + rows[(size_t)i];
    }
    if (n > 0) {
      const int32_t last = (int32_t)(n - 1);
      store.gather(&last, 1, rows.data());
      sink = sink + rows[0];
    }
    const int32_t past_end = (int32_t)n;
    bool refused = false;
    try {
      store.gather(&past_end, 1, rows.data());
    } catch (const Error&) {
      refused = true;
    }
    if (!refused) std::abort();  // a node id past the end must be an error
  });
  return 0;
}
