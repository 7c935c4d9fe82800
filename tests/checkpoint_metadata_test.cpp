// The numbers a checkpoint's metadata holds as text (step, optimizer step, RNG state) and a
// sharded checkpoint's manifest holds as JSON are read strictly: a negative step, text that is not
// a number or one beyond its type is a one-line error naming the file and the field (never the
// standard library's bare "stoll").
#include <gtest/gtest.h>

#include <map>

#include "gannet/io/checkpoint.h"
#include "gannet/io/safetensors.h"
#include "gannet/io/sharded_checkpoint.h"
#include "gannet/optim/adamw.h"
#include "test_files.h"

using namespace gannet;
using gannet::testing::has;
using gannet::testing::message_of;

namespace {
models::GptConfig small_config() {
  models::GptConfig c;
  c.vocab_size = 16;
  c.n_ctx = 8;
  c.n_layer = 1;
  c.n_head = 2;
  c.n_embd = 8;
  return c;
}

class CheckpointMetadata : public gannet::testing::TempDirTest {
 protected:
  // A training checkpoint of a small model whose metadata has `key` set to `value`.
  std::string with_metadata(const std::string& key, const std::string& value) {
    models::Gpt m(small_config());
    m.init(1);
    optim::AdamW opt(m.parameters(), optim::AdamWOptions{});
    io::save_checkpoint(file("ok.safetensors"), m, &opt, io::TrainState{3, {1, 2, 3, 4}, "", {}});
    io::SafeTensors f = io::SafeTensors::open(file("ok.safetensors"));
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const std::string& n : f.names()) tensors.emplace_back(n, f.get(n));
    std::map<std::string, std::string> meta = f.metadata();
    meta[key] = value;
    io::save_safetensors(file("bad.safetensors"), tensors, meta);
    return file("bad.safetensors");
  }

  // The error of resuming from it.
  std::string load_error(const std::string& path) {
    models::Gpt m(small_config());
    optim::AdamW opt(m.parameters(), optim::AdamWOptions{});
    io::TrainState st;
    return message_of([&] { io::load_checkpoint(path, m, &opt, &st); });
  }
};
}  // namespace

TEST_F(CheckpointMetadata, StepsAreNonNegativeIntegers) {
  std::string p = with_metadata("step", "-5");
  EXPECT_EQ(load_error(p), p + ": checkpoint metadata 'step' must be >= 0, got -5");
  p = with_metadata("step", "12x");
  EXPECT_EQ(load_error(p), p + ": checkpoint metadata 'step': expected an integer, got '12x'");
  p = with_metadata("step", "99999999999999999999");
  EXPECT_EQ(load_error(p), p + ": checkpoint metadata 'step': '99999999999999999999' is out of range for an integer");
  p = with_metadata("optim_step", "");
  EXPECT_EQ(load_error(p), p + ": checkpoint metadata 'optim_step': expected an integer, got ''");
  p = with_metadata("optim_step", "-1");
  EXPECT_EQ(load_error(p), p + ": checkpoint metadata 'optim_step' must be >= 0, got -1");
  p = with_metadata("rng", "1,2,3");
  EXPECT_EQ(load_error(p), p + ": checkpoint metadata 'rng' is not 4 integers: '1,2,3'");
  p = with_metadata("rng", "1,2,3,-4");
  EXPECT_EQ(load_error(p), p + ": checkpoint metadata 'rng': expected a non-negative integer, got '-4'");
  p = with_metadata("step", "7");  // a good one still reads
  models::Gpt m(small_config());
  optim::AdamW opt(m.parameters(), optim::AdamWOptions{});
  io::TrainState st;
  io::load_checkpoint(p, m, &opt, &st);
  EXPECT_EQ(st.step, 7);
  EXPECT_EQ(st.rng, (std::array<uint64_t, 4>{1, 2, 3, 4}));
}

TEST(ShardedManifestValues, StepsAndDegreesAreRangeChecked) {
  io::Manifest m;
  m.model = small_config();
  m.state.step = -1;
  EXPECT_EQ(message_of([&] { io::parse_manifest(io::manifest_to_json(m), "m.json"); }),
            "m.json: train_state.step must be in [0, 9223372036854775807], got -1");
  m.state.step = 0;
  m.optim_step = 5;
  std::string text = io::manifest_to_json(m);
  const std::string optim = "\"optim_step\": 5";
  ASSERT_NE(text.find(optim), std::string::npos) << text;
  EXPECT_EQ(message_of([&] {
              io::parse_manifest(std::string(text).replace(text.find(optim), optim.size(), "\"optim_step\": -2"), "m.json");
            }),
            "m.json: train_state.optim_step must be in [0, 9223372036854775807], got -2");
  const std::string tensor = "\"tensor\": 1";
  ASSERT_NE(text.find(tensor), std::string::npos) << text;
  text.replace(text.find(tensor), tensor.size(), "\"tensor\": 4294967297");  // 2^32 + 1: 1 as an int
  EXPECT_EQ(message_of([&] { io::parse_manifest(text, "m.json"); }),
            "m.json: layout.tensor must be in [1, 2147483647], got 4294967297");
}
