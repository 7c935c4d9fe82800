// Sharded checkpoints: whole tensors reassembled from pieces spread over shard files (boxes, runs
// of a box's elements, several pieces per file), every broken manifest a one-line error that names
// the problem, and the ownership rule that writes replicated pieces once.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "gannet/core/atomic_file.h"
#include "gannet/core/rng.h"
#include "gannet/dist/checkpoint_shards.h"
#include "gannet/io/safetensors.h"
#include "gannet/io/sharded_checkpoint.h"
#include "test_files.h"

using namespace gannet;
namespace fs = std::filesystem;

namespace {

// The piece's elements taken from `whole` one by one (the reference for scatter_piece).
std::vector<float> cut(const Tensor& whole, const io::PiecePlace& p) {
  const Shape& s = whole.shape();
  std::vector<int64_t> ext;
  for (const auto& [b, e] : p.box) ext.push_back(e - b);
  std::vector<float> out;
  for (int64_t i = p.flat_begin; i < p.flat_end; ++i) {
    int64_t rest = i, off = 0, stride = 1;
    for (size_t k = s.size(); k-- > 0;) {
      off += (p.box[k].first + rest % ext[k]) * stride;
      rest /= ext[k];
      stride *= s[k];
    }
    out.push_back(whole.f32()[off]);
  }
  return out;
}

io::PiecePlace place(std::vector<std::pair<int64_t, int64_t>> box, int64_t b = 0, int64_t e = -1) {
  io::PiecePlace p{box, b, e};
  if (e < 0) {
    p.flat_end = 1;
    for (const auto& [lo, hi] : box) p.flat_end *= hi - lo;
  }
  return p;
}

class ShardedCheckpoint : public gannet::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    Rng rng(3);
    for (auto [name, shape] : {std::pair<const char*, Shape>{"a", {6, 5}}, {"b", {4, 3, 2}}, {"c", {7}}}) {
      Tensor t = Tensor::empty(shape);
      for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = rng.uniform() - 0.5f;
      original_[name] = t;
    }
    // a: a row block, a column block, and a box split into two runs over both files; b: a block
    // of the leading dimension, and the rest in two runs; c: three runs.
    add("a", "s0", place({{0, 2}, {0, 5}}));
    add("a", "s1", place({{2, 6}, {0, 3}}));
    add("a", "s0", place({{2, 6}, {3, 5}}, 0, 3));
    add("a", "s1", place({{2, 6}, {3, 5}}, 3, 8));
    add("b", "s0", place({{0, 2}, {0, 3}, {0, 2}}));
    add("b", "s1", place({{2, 4}, {0, 3}, {0, 2}}, 0, 5));
    add("b", "s0", place({{2, 4}, {0, 3}, {0, 2}}, 5, 12));
    add("c", "s1", place({{0, 7}}, 0, 2));
    add("c", "s0", place({{0, 7}}, 2, 3));
    add("c", "s1", place({{0, 7}}, 3, 7));
    write_all();
  }

  void add(const std::string& tensor, const std::string& shard, const io::PiecePlace& p) {
    const std::string entry = str(tensor, "#", entries_[shard].size());
    std::vector<float> v = cut(original_[tensor], p);
    entries_[shard].emplace_back(entry, Tensor::from_vector(v, {(int64_t)v.size()}));
    pieces_[tensor].push_back({"save/" + shard + ".safetensors", entry, p});
  }

  io::Manifest manifest() {
    io::Manifest m;
    m.model.vocab_size = 40;
    m.model.n_ctx = 16;
    m.model.n_layer = 1;
    m.model.n_head = 2;
    m.model.n_embd = 16;
    m.layout = {2, 1, 1, 2, 2};
    m.state.step = 5;
    m.state.rng = {1, 2, 3, 0xFFFFFFFFFFFFFFFFull};
    m.state.train_config = "{\"x\": 1}";
    m.optim_step = 5;
    for (const auto& [name, t] : original_) m.tensors.push_back({name, t.shape(), pieces_[name]});
    for (const auto& [shard, entries] : entries_) {
      const std::string f = "save/" + shard + ".safetensors";
      m.shards.push_back({f, shard == "s0" ? 0 : 1, (int64_t)fs::file_size(dir_ / "ck" / f)});
    }
    return m;
  }

  void write_all() {
    fs::create_directories(dir_ / "ck" / "save");
    for (const auto& [shard, entries] : entries_)
      io::save_safetensors((dir_ / "ck" / "save" / (shard + ".safetensors")).string(), entries);
    io::write_manifest(manifest_path(), manifest());
  }

  std::string manifest_path() const { return (dir_ / "ck" / "manifest.json").string(); }

  // The error reading the checkpoint after `edit` changed the manifest's JSON text.
  std::string error_after(const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = nlohmann::json::parse(read_file(manifest_path()));
    edit(j);
    gannet::testing::write(manifest_path(), j.dump());
    return gannet::testing::message_of([&] { io::read_sharded_checkpoint(manifest_path()); });
  }

  std::map<std::string, Tensor> original_;
  std::map<std::string, std::vector<std::pair<std::string, Tensor>>> entries_;
  std::map<std::string, std::vector<io::ManifestPiece>> pieces_;
};

TEST_F(ShardedCheckpoint, ReassemblesTheWholeTensors) {
  for (const std::string& path : {manifest_path(), (dir_ / "ck").string()}) {
    ASSERT_TRUE(io::is_sharded_checkpoint(path)) << path;
    io::ShardedCheckpoint ck = io::read_sharded_checkpoint(path);
    ASSERT_EQ(ck.tensors.size(), original_.size());
    for (const auto& [name, t] : original_) {
      const Tensor& got = ck.tensors.at(name);
      ASSERT_EQ(got.shape(), t.shape()) << name;
      for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(got.f32()[i], t.f32()[i]) << name << " " << i;
    }
    EXPECT_EQ(ck.manifest.state.step, 5);
    EXPECT_EQ(ck.manifest.state.rng[3], 0xFFFFFFFFFFFFFFFFull);
    EXPECT_EQ(ck.manifest.state.train_config, "{\"x\": 1}");
    EXPECT_EQ(ck.manifest.optim_step, 5);
    EXPECT_EQ(ck.manifest.layout.zero_stage, 2);
    EXPECT_EQ(ck.manifest.model.n_embd, 16);
  }
  // Only the tensors asked for.
  io::ShardedCheckpoint some = io::read_sharded_checkpoint(manifest_path(), [](const std::string& n) { return n == "b"; });
  EXPECT_EQ(some.tensors.size(), 1u);
  EXPECT_TRUE(some.tensors.count("b"));
  EXPECT_FALSE(io::is_sharded_checkpoint((dir_ / "ck" / "save").string()));
}

TEST_F(ShardedCheckpoint, BrokenManifestsAreOneLineErrors) {
  auto one_line = [](const std::string& m) { return m.find('\n') == std::string::npos && !m.empty(); };
  std::string e = error_after([](nlohmann::json& j) { j["tensors"][0]["pieces"][1]["box"][0] = {1, 6}; });
  EXPECT_TRUE(gannet::testing::has(e, "tensor 'a' [6, 5]: piece 1")) << e;
  EXPECT_TRUE(gannet::testing::has(e, "overlaps another piece at element 5")) << e;
  EXPECT_TRUE(one_line(e)) << e;
  write_all();
  e = error_after([](nlohmann::json& j) { j["tensors"][2]["pieces"].erase(1); });
  EXPECT_TRUE(gannet::testing::has(e, "tensor 'c' [7]: 1 of 7 elements are in no piece (the first is element 2)")) << e;
  write_all();
  e = error_after([](nlohmann::json& j) { j["tensors"][1]["pieces"][0]["box"][2] = {0, 3}; });
  EXPECT_TRUE(gannet::testing::has(e, "lies outside the tensor in dimension 2")) << e;
  write_all();
  e = error_after([](nlohmann::json& j) { j["tensors"][1]["shape"] = {4, 3, 3}; });
  EXPECT_TRUE(gannet::testing::has(e, "tensor 'b' [4, 3, 3]: 12 of 36 elements are in no piece")) << e;
  write_all();
  e = error_after([](nlohmann::json& j) { j["tensors"][0]["pieces"][2]["flat"] = {0, 9}; });
  EXPECT_TRUE(gannet::testing::has(e, "has an element range outside its box")) << e;
  write_all();
  e = error_after([](nlohmann::json& j) { j["tensors"][0]["pieces"][2]["file"] = "save/s9.safetensors"; });
  EXPECT_TRUE(gannet::testing::has(e, "names a shard file that the manifest does not list")) << e;
  write_all();
  e = error_after([](nlohmann::json& j) { j["version"] = 2; });
  EXPECT_TRUE(gannet::testing::has(e, "manifest version 2 is not supported (this gannet reads version 1)")) << e;
  write_all();
  e = error_after([](nlohmann::json& j) { j.erase("format"); });
  EXPECT_TRUE(gannet::testing::has(e, "not a gannet sharded checkpoint manifest")) << e;
  write_all();
  e = error_after([](nlohmann::json& j) { j["tensors"][0].erase("pieces"); });
  EXPECT_TRUE(gannet::testing::has(e, "malformed manifest: tensor 'a' has no 'pieces'")) << e;
  write_all();
  // A piece whose stored tensor does not hold the piece's element count.
  e = error_after([](nlohmann::json& j) { j["tensors"][0]["pieces"][0]["name"] = "b#3"; });
  EXPECT_TRUE(gannet::testing::has(e, "the manifest's piece of 'a' needs 10 f32 elements")) << e;
  write_all();
  e = error_after([](nlohmann::json& j) { j["tensors"][0]["pieces"][0]["name"] = "nope"; });
  EXPECT_TRUE(gannet::testing::has(e, "no tensor 'nope' (a piece of 'a'")) << e;
  EXPECT_TRUE(one_line(e)) << e;

  // Bad JSON, a missing shard, a shard of another size (another save's).
  write_all();
  gannet::testing::write(manifest_path(), "{\"format\": ");
  e = gannet::testing::message_of([&] { io::read_sharded_checkpoint(manifest_path()); });
  EXPECT_TRUE(gannet::testing::has(e, "manifest.json: parse error")) << e;
  EXPECT_TRUE(one_line(e)) << e;
  write_all();
  fs::remove(dir_ / "ck" / "save" / "s1.safetensors");
  e = gannet::testing::message_of([&] { io::read_sharded_checkpoint((dir_ / "ck").string()); });
  EXPECT_TRUE(gannet::testing::has(e, "missing shard file")) << e;
  EXPECT_TRUE(gannet::testing::has(e, "s1.safetensors (rank 1)")) << e;
  write_all();
  gannet::testing::write((dir_ / "ck" / "save" / "s1.safetensors").string(), "short");
  e = gannet::testing::message_of([&] { io::read_sharded_checkpoint(manifest_path()); });
  EXPECT_TRUE(gannet::testing::has(e, "s1.safetensors is 5 bytes, the manifest says")) << e;
  // A missing manifest.
  fs::remove(manifest_path());
  e = gannet::testing::message_of([&] { io::read_sharded_checkpoint(manifest_path()); });
  EXPECT_TRUE(gannet::testing::has(e, "cannot open")) << e;
}

TEST_F(ShardedCheckpoint, WritingAnInvalidManifestFailsAndLeavesTheOldOne) {
  const std::string before = read_file(manifest_path());
  io::Manifest m = manifest();
  m.tensors[0].pieces.push_back(m.tensors[0].pieces[0]);  // a piece twice
  std::string e = gannet::testing::message_of([&] { io::write_manifest(manifest_path(), m); });
  EXPECT_TRUE(gannet::testing::has(e, "overlaps another piece")) << e;
  EXPECT_EQ(read_file(manifest_path()), before);
}

TEST(ShardOwnership, TheLowestRankHoldingAPieceWritesIt) {
  using dist::PieceKey;
  using dist::StateTensor;
  const PieceKey whole{0, StateTensor::value, {{0, 4}, {0, 2}}, 0, 8};          // replicated on all ranks
  const PieceKey rows0{1, StateTensor::value, {{0, 2}, {0, 2}}, 0, 4};          // a slice on ranks 0 and 2
  const PieceKey rows1{1, StateTensor::value, {{2, 4}, {0, 2}}, 0, 4};          // the other on 1 and 3
  const PieceKey m0{1, StateTensor::first_moment, {{0, 2}, {0, 2}}, 0, 2};      // moment runs, one rank each
  const PieceKey m1{1, StateTensor::first_moment, {{0, 2}, {0, 2}}, 2, 4};
  const std::vector<std::vector<PieceKey>> keys = {
      {whole, rows0, m0}, {whole, rows1}, {whole, rows0, m1}, {whole, rows1}};
  const auto owners = dist::piece_owners(keys);
  ASSERT_EQ(owners.size(), 4u);
  EXPECT_EQ(owners[0], (std::vector<bool>{true, true, true}));
  EXPECT_EQ(owners[1], (std::vector<bool>{false, true}));
  EXPECT_EQ(owners[2], (std::vector<bool>{false, false, true}));
  EXPECT_EQ(owners[3], (std::vector<bool>{false, false}));
}

}  // namespace
