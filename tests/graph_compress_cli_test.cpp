// `gannet graph compress` as a user runs it: the per-level table and the file, or one error line.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "bifeat_test_data.h"
#include "command_output.h"
#include "gannet/gnn/feature_store.h"
#include "gannet/gnn/graph_dataset.h"
#include "test_files.h"

namespace gannet::gnn {
namespace {

using testing::has;

class BiFeatCliTest : public testing::TempDirTest {
 protected:
  // A data set of n nodes with d features in dir_/set.
  std::string write_set(int64_t n, int64_t d) {
    const std::string dir = file("set");
    Tensor labels = Tensor::zeros({n}, DType::i32), split = Tensor::zeros({n}, DType::u8);
    std::vector<std::string> names;
    for (int64_t v = 0; v < n; ++v) names.push_back("node" + std::to_string(v));
    save_graph_files(dir, "generated", testing::skewed_graph(n, 2, 1), labels, split, {"only"}, names, "{}\n");
    save_feature_file(dir, testing::heavy_tailed_features(n, d, 2));
    return dir;
  }
};

TEST_F(BiFeatCliTest, CompressPrintsEachLevelAndWritesTheFile) {
  const std::string dir = write_set(600, 16);
  const auto [rc, out] = testing::command_status(std::string(GANNET_BINARY) + " graph compress --data " + dir +
                                                 " --pq-subvectors 4 --kmeans-iters 2 --sq-fraction 0.1 -t 1 2>&1");
  ASSERT_EQ(rc, 0) << out;
  for (const char* part : {"log-SQ          60", "PQ             540", "map", "overall", "k-means sub-space 4/4"})
    EXPECT_TRUE(has(out, part)) << part << " in:\n" << out;
  const BiFeatStore s = BiFeatStore::open(default_bifeat_path(dir));
  EXPECT_EQ(s.sq_rows(), 60);
  EXPECT_EQ(s.metadata().at("kmeans_iters"), "2");
}

TEST_F(BiFeatCliTest, BadOptionsAreOneErrorLine) {
  const std::string dir = write_set(100, 12);
  const auto [rc, out] = testing::command_status(std::string(GANNET_BINARY) + " graph compress --data " + dir +
                                                 " --pq-subvectors 5 2>&1");
  EXPECT_NE(rc, 0);
  EXPECT_TRUE(has(out, "feature dimension 12 is not a multiple of the PQ sub-vector count 5")) << out;
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
  const auto [rc2, out2] = testing::command_status(std::string(GANNET_BINARY) + " graph compress --data " + dir +
                                                   " --sq-bits 6 2>&1");
  EXPECT_NE(rc2, 0);
  EXPECT_TRUE(has(out2, "--sq-bits")) << out2;
  const auto [rc3, out3] = testing::command_status(std::string(GANNET_BINARY) + " graph compress --data " + dir +
                                                   " --codebook-bits 16 2>&1");
  EXPECT_NE(rc3, 0);
  EXPECT_TRUE(has(out3, "--codebook-bits")) << out3;
  EXPECT_FALSE(std::filesystem::exists(default_bifeat_path(dir)));
}

TEST_F(BiFeatCliTest, EightBitCodebooksAreWrittenWhenAsked) {
  const std::string dir = write_set(400, 16);
  const auto [rc, out] = testing::command_status(std::string(GANNET_BINARY) + " graph compress --data " + dir +
                                                 " --pq-subvectors 8 --codebook-bits 8 --sq-fraction 0 --sq-bits 4"
                                                 " --kmeans-iters 1 -t 1 2>&1");
  ASSERT_EQ(rc, 0) << out;
  const BiFeatStore s = BiFeatStore::open(default_bifeat_path(dir));
  EXPECT_EQ(s.metadata().at("pq_codebook_bits"), "8");
  EXPECT_EQ(s.sq_rows(), 0);
  EXPECT_EQ(s.pq_rows(), 400);
}

}  // namespace
}  // namespace gannet::gnn
