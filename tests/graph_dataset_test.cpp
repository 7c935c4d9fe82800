// The graph data set directory: what save_graph_files and save_feature_file write,
// load_graph_dataset reads back, and every broken file is one error naming the file and the
// problem.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <vector>

#include "gannet/core/atomic_file.h"
#include "gannet/gnn/graph_dataset.h"
#include "gannet/io/safetensors.h"
#include "test_files.h"

namespace gannet::gnn {
namespace {

using testing::has;
using testing::message_of;

template <class T>
Tensor vector_of(const std::vector<T>& v, DType dtype) {
  Tensor t = Tensor::empty({(int64_t)v.size()}, dtype);
  if (!v.empty()) std::memcpy(t.raw(), v.data(), v.size() * sizeof(T));
  return t;
}

// The path 0 - 1 - 2 - 3 and the triangle-free extra edge 0 - 2: neighbours of 0: 1, 2; of 1: 0,
// 2; of 2: 0, 1, 3; of 3: 2.
const std::vector<int64_t> kIndptr = {0, 2, 4, 7, 8};
const std::vector<int32_t> kIndices = {1, 2, 0, 2, 0, 1, 3, 2};
const std::vector<int32_t> kLabels = {0, 1, 1, 0};
const std::vector<uint8_t> kSplit = {kTrain, kValidation, kTrain, kTest};

class GraphDatasetTest : public testing::TempDirTest {
 protected:
  std::string dir() const { return dir_.string(); }
  CsrGraph graph(const std::vector<int64_t>& indptr, const std::vector<int32_t>& indices) const {
    CsrGraph g;
    g.num_nodes = (int64_t)indptr.size() - 1;
    g.indptr = vector_of(indptr, DType::i64);
    g.indices = vector_of(indices, DType::i32);
    return g;
  }
  void write_valid() const {
    save_graph_files(dir(), "debian", graph(kIndptr, kIndices), vector_of(kLabels, DType::i32),
                     vector_of(kSplit, DType::u8), {"a", "b"}, {"n0", "n1", "n2", "n3"}, "{\"nodes\": 4}\n");
    Tensor f = Tensor::empty({4, 3});
    for (int i = 0; i < 12; ++i) f.f32()[i] = (float)i * 0.5f;
    save_feature_file(dir(), f);
  }
  // Replaces graph.safetensors by raw arrays (no checks on the way).
  void write_graph(const std::vector<int64_t>& indptr, const std::vector<int32_t>& indices,
                   const std::map<std::string, std::string>& meta) const {
    io::save_safetensors(file("graph.safetensors"),
                         {{"indptr", vector_of(indptr, DType::i64)}, {"indices", vector_of(indices, DType::i32)}}, meta);
  }
  void write_graph(const std::vector<int64_t>& indptr, const std::vector<int32_t>& indices) const {
    write_graph(indptr, indices, {{"source", "debian"}, {"num_nodes", std::to_string(indptr.size() - 1)}});
  }
  void write_nodes(const Tensor& labels, const Tensor& split, const std::string& classes = "[\"a\", \"b\"]") const {
    io::save_safetensors(file("nodes.safetensors"), {{"labels", labels}, {"split", split}}, {{"classes", classes}});
  }
  // The error loading the directory gives: it must name `file_name` and contain `problem`.
  void expect_error(const std::string& file_name, const std::string& problem) const {
    const std::string m = message_of([&] { load_graph_dataset(dir()); });
    EXPECT_TRUE(has(m, file_name)) << m;
    EXPECT_TRUE(has(m, problem)) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
};

TEST_F(GraphDatasetTest, WrittenSetReadsBackWithItsNodesPerPart) {
  write_valid();
  const GraphDataset d = load_graph_dataset(dir());
  EXPECT_EQ(d.source, "debian");
  EXPECT_EQ(d.num_nodes(), 4);
  EXPECT_EQ(d.feature_dim(), 3);
  EXPECT_EQ(d.classes, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(d.graph.num_directed_edges(), 8);
  EXPECT_EQ(std::vector<int32_t>(d.graph.neighbours_of(2), d.graph.neighbours_of(2) + d.graph.degree(2)),
            (std::vector<int32_t>{0, 1, 3}));
  EXPECT_EQ(std::vector<int32_t>(d.labels.data<int32_t>(), d.labels.data<int32_t>() + 4), kLabels);
  EXPECT_EQ(d.features.f32()[7], 3.5f);
  EXPECT_EQ(d.nodes_in(kTrain), (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(d.nodes_in(kValidation), (std::vector<int32_t>{1}));
  EXPECT_EQ(d.nodes_in(kTest), (std::vector<int32_t>{3}));
  EXPECT_EQ(read_file(file("names.txt")), "n0\nn1\nn2\nn3\n");
  EXPECT_EQ(read_file(file("summary.json")), "{\"nodes\": 4}\n");
}

TEST_F(GraphDatasetTest, MissingDirectoryAndFilesAreNamed) {
  EXPECT_TRUE(has(message_of([&] { load_graph_dataset(file("nowhere")); }), "no such directory"));
  write_valid();
  std::filesystem::remove(file("features.safetensors"));
  expect_error("features.safetensors", "No such file");
  write_valid();
  std::filesystem::remove(file("nodes.safetensors"));
  expect_error("nodes.safetensors", "No such file");
  std::filesystem::remove(file("graph.safetensors"));
  expect_error("graph.safetensors", "No such file");
}

TEST_F(GraphDatasetTest, CorruptBytesAreNamed) {
  write_valid();
  testing::write(file("graph.safetensors"), "not a safetensors file at all");
  expect_error("graph.safetensors", "not a valid safetensors file");
  write_valid();
  const std::string nodes = read_file(file("nodes.safetensors"));
  testing::write(file("nodes.safetensors"), nodes.substr(0, nodes.size() - 3));  // truncated data
  expect_error("nodes.safetensors", "not a valid safetensors file");
}

TEST_F(GraphDatasetTest, WrongDtypesAndShapesAreNamed) {
  write_valid();
  io::save_safetensors(file("graph.safetensors"),
                       {{"indptr", vector_of(std::vector<int32_t>{0, 0}, DType::i32)},
                        {"indices", vector_of(std::vector<int32_t>{}, DType::i32)}},
                       {{"source", "debian"}, {"num_nodes", "1"}});
  expect_error("graph.safetensors", "'indptr' is i32[2], expected a vector of i64");
  write_valid();
  write_nodes(vector_of(std::vector<int32_t>{0, 1, 1}, DType::i32), vector_of(kSplit, DType::u8));
  expect_error("nodes.safetensors", "labels");
  write_valid();
  write_nodes(vector_of(kLabels, DType::i32), vector_of(kLabels, DType::i32));
  expect_error("nodes.safetensors", "split");
  write_valid();
  save_feature_file(dir(), Tensor::zeros({3, 2}));
  expect_error("features.safetensors", "expected f32[4, D >= 1]");
  write_valid();
  io::save_safetensors(file("features.safetensors"), {{"features", Tensor::zeros({4, 2}, DType::bf16)}});
  expect_error("features.safetensors", "expected f32[4, D >= 1]");
}

TEST_F(GraphDatasetTest, BrokenCsrInvariantsAreNamed) {
  write_valid();
  write_graph({1, 2, 4, 7, 8}, kIndices);
  expect_error("graph.safetensors", "indptr[0] is 1");
  write_graph({0, 2, 1, 7, 8}, kIndices);
  expect_error("graph.safetensors", "indptr decreases at node 1");
  write_graph({0, 2, 4, 7, 7}, kIndices);
  expect_error("graph.safetensors", "indptr ends at 7 but indices holds 8");
  write_graph(kIndptr, {1, 2, 0, 2, 0, 1, 4, 2});
  expect_error("graph.safetensors", "neighbour 4 of node 2 is outside [0, 4)");
  write_graph(kIndptr, {1, 2, 0, 2, 0, 1, -1, 2});
  expect_error("graph.safetensors", "neighbour -1 of node 2");
  write_graph(kIndptr, {1, 2, 0, 2, 0, 1, 3, 3});
  expect_error("graph.safetensors", "node 3 lists itself");
  write_graph(kIndptr, {1, 2, 0, 2, 1, 0, 3, 2});
  expect_error("graph.safetensors", "neighbours of node 2 are not strictly ascending (0 after 1)");
  write_graph(kIndptr, {1, 1, 0, 2, 0, 1, 3, 2});
  expect_error("graph.safetensors", "neighbours of node 0 are not strictly ascending (1 after 1)");
}

TEST_F(GraphDatasetTest, BadMetadataIsNamed) {
  write_valid();
  write_graph(kIndptr, kIndices, {{"source", "debian"}, {"num_nodes", "5"}});
  expect_error("graph.safetensors", "num_nodes is 5 but indptr holds 4 + 1");
  write_graph(kIndptr, kIndices, {{"source", "debian"}, {"num_nodes", "four"}});
  expect_error("graph.safetensors", "num_nodes");
  write_graph(kIndptr, kIndices, {{"num_nodes", "4"}});
  expect_error("graph.safetensors", "no 'source'");
  write_valid();
  write_nodes(vector_of(kLabels, DType::i32), vector_of(kSplit, DType::u8), "[\"a\", ");
  expect_error("nodes.safetensors", "'classes' is not a non-empty JSON array");
  write_nodes(vector_of(kLabels, DType::i32), vector_of(kSplit, DType::u8), "[\"a\", 3]");
  expect_error("nodes.safetensors", "non-string");
  write_nodes(vector_of(kLabels, DType::i32), vector_of(kSplit, DType::u8), "[\"a\", \"a\"]");
  expect_error("nodes.safetensors", "names a class twice");
}

TEST_F(GraphDatasetTest, LabelsOutOfRangeAndBadSplitValuesAreNamed) {
  write_valid();
  write_nodes(vector_of(std::vector<int32_t>{0, 1, 2, 0}, DType::i32), vector_of(kSplit, DType::u8));
  expect_error("nodes.safetensors", "label 2 of node 2 is outside [0, 2)");
  write_nodes(vector_of(std::vector<int32_t>{0, -1, 1, 0}, DType::i32), vector_of(kSplit, DType::u8));
  expect_error("nodes.safetensors", "label -1 of node 1");
  write_nodes(vector_of(kLabels, DType::i32), vector_of(std::vector<uint8_t>{0, 1, 3, 2}, DType::u8));
  expect_error("nodes.safetensors", "split value 3 of node 2");
}

TEST_F(GraphDatasetTest, WritersRefuseInconsistentInputAndLeaveNoFiles) {
  const std::string out = file("out");
  auto save = [&](const CsrGraph& g, const std::vector<int32_t>& labels, const std::vector<std::string>& names) {
    save_graph_files(out, "debian", g, vector_of(labels, DType::i32), vector_of(kSplit, DType::u8), {"a", "b"}, names,
                     "{}");
  };
  const std::vector<std::string> names = {"n0", "n1", "n2", "n3"};
  EXPECT_TRUE(has(message_of([&] { save(graph(kIndptr, {1, 2, 0, 2, 0, 1, 2, 2}), kLabels, names); }),
                  "node 2 lists itself"));
  EXPECT_TRUE(has(message_of([&] { save(graph(kIndptr, kIndices), {0, 1, 5, 0}, names); }),
                  "label 5 of node 2 is outside [0, 2)"));
  EXPECT_TRUE(has(message_of([&] { save(graph(kIndptr, kIndices), kLabels, {"n0", "n1"}); }), "2 names for 4 nodes"));
  EXPECT_TRUE(has(message_of([&] { save(graph(kIndptr, kIndices), kLabels, {"n0", "n\n1", "n2", "n3"}); }),
                  "line break"));
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_TRUE(has(message_of([&] { save_feature_file(out, Tensor::zeros({4})); }), "expected f32[N, D]"));
}

}  // namespace
}  // namespace gannet::gnn
