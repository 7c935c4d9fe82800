// `gannet graph train`'s data set: graph.safetensors, nodes.safetensors and features.safetensors
// joined by fuzz::kSplit. The set is loaded (every check of load_graph_dataset), then the first
// nodes are sampled two hops out and their features gathered, as a training step would.
#include <algorithm>
#include <cstdint>
#include <numeric>

#include "fuzz_support.h"
#include "gannet/gnn/feature_store.h"
#include "gannet/gnn/graph_dataset.h"
#include "gannet/gnn/neighbour_sampler.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gannet;
  const std::vector<std::string> parts = fuzz::split_input(data, size, 3);
  const auto dir = fuzz::scratch_dir() / "graph";
  std::filesystem::remove_all(dir);
  fuzz::write_file(dir / "graph.safetensors", parts[0]);
  fuzz::write_file(dir / "nodes.safetensors", parts[1]);
  fuzz::write_file(dir / "features.safetensors", parts[2]);
  fuzz::expect_clean_errors([&] {
    const gnn::GraphDataset set = gnn::load_graph_dataset(dir.string());
    std::vector<int32_t> seeds((size_t)std::min<int64_t>(set.num_nodes(), 64));
    std::iota(seeds.begin(), seeds.end(), 0);
    const gnn::MiniBatch batch = gnn::NeighbourSampler(set.graph, {3, 2}).sample(seeds, 7);
    const gnn::RawFeatureStore store(set.features);
    std::vector<float> rows(batch.input_nodes.size() * (size_t)store.dim());
    store.gather(batch.input_nodes.data(), (int64_t)batch.input_nodes.size(), rows.data());
    volatile float sink = 0;
    for (float x : rows) sink = sink + x;
    for (gnn::SplitPart part : {gnn::kTrain, gnn::kValidation, gnn::kTest}) sink = sink + (float)set.nodes_in(part).size();
  });
  return 0;
}
