// The raw feature store and the store chooser: gathers are the rows, bad ids are one error.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "bifeat_test_data.h"
#include "gannet/gnn/bifeat_compress.h"
#include "gannet/gnn/feature_store.h"
#include "test_files.h"

namespace gannet::gnn {
namespace {

using testing::has;
using testing::message_of;

TEST(FeatureStoreTest, RawGatherCopiesTheRows) {
  const Tensor f = testing::normal_features(300, 17, 1);
  const RawFeatureStore store(f);
  EXPECT_EQ(store.num_nodes(), 300);
  EXPECT_EQ(store.dim(), 17);
  EXPECT_EQ(store.bytes(), 300 * 17 * 4);
  std::vector<int32_t> nodes;
  for (int i = 0; i < 5000; ++i) nodes.push_back((i * 7919) % 300);  // large enough to run on threads
  std::vector<float> out(nodes.size() * 17);
  store.gather(nodes.data(), (int64_t)nodes.size(), out.data());
  for (size_t i = 0; i < nodes.size(); ++i)
    ASSERT_EQ(std::memcmp(&out[i * 17], f.f32() + nodes[i] * 17, 17 * sizeof(float)), 0) << "row " << i;
}

TEST(FeatureStoreTest, GatherNamesAnOutOfRangeNode) {
  const RawFeatureStore store(testing::normal_features(10, 3, 1));
  const int32_t nodes[3] = {1, 10, 2};
  float out[9];
  const std::string m = message_of([&] { store.gather(nodes, 3, out); });
  EXPECT_TRUE(has(m, "node id 10 at position 1")) << m;
  EXPECT_THROW(RawFeatureStore(Tensor::empty({4}, DType::f32)), Error);
}

class FeatureStoreFileTest : public testing::TempDirTest {};

TEST_F(FeatureStoreFileTest, OpenFeatureStoreChoosesRawOrBiFeatAndChecksTheShape) {
  GraphDataset data;
  data.dir = dir_.string();
  data.graph = testing::skewed_graph(2000, 2, 3);  // enough nodes that the fixed tables are a small part
  data.features = testing::normal_features(2000, 8, 4);
  BiFeatOptions opt;
  opt.pq_subvectors = 2;
  opt.kmeans_iters = 2;
  compress_features(data.features, data.graph, default_bifeat_path(data.dir), opt);
  EXPECT_EQ(open_feature_store(data, "raw")->bytes(), 2000 * 8 * 4);
  const auto bifeat = open_feature_store(data, "bifeat");
  EXPECT_EQ(bifeat->num_nodes(), 2000);
  EXPECT_LT(bifeat->bytes(), 2000 * 8 * 4 / 2);
  EXPECT_EQ(open_feature_store(data, default_bifeat_path(data.dir))->bytes(), bifeat->bytes());
  GraphDataset other = data;
  other.features = testing::normal_features(2000, 16, 4);
  const std::string m = message_of([&] { open_feature_store(other, "bifeat"); });
  EXPECT_TRUE(has(m, "2000 nodes of 8 features")) << m;
  EXPECT_THROW(open_feature_store(data, file("missing.safetensors")), Error);
}

}  // namespace
}  // namespace gannet::gnn
