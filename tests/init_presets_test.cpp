// io::write_random_gpt, the streamed writer behind `gannet init`: the file read_gpt_weights
// reads, Gpt::init's distributions, bf16, and determinism.
#include "gannet/io/gpt_random_init.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "gannet/core/atomic_file.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/io/safetensors.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
using namespace gannet::io;
namespace fs = std::filesystem;

namespace {

class RandomGptTest : public TempDirTest {
 protected:
  // 2 layers, d 64; a vocabulary of 2050 makes wte [2050, 64] span three of the writer's blocks.
  static models::GptConfig tiny() {
    models::GptConfig c;
    c.vocab_size = 2050;
    c.n_ctx = 32;
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 64;
    return c;
  }
};

struct Moments {
  double mean = 0, std = 0;
};

Moments moments_of(const Tensor& t) {
  const Tensor f = as_f32(t);
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < f.numel(); ++i) {
    s += f.f32()[i];
    s2 += (double)f.f32()[i] * f.f32()[i];
  }
  const double n = (double)f.numel();
  return {s / n, std::sqrt(s2 / n - (s / n) * (s / n))};
}

}  // namespace

TEST_F(RandomGptTest, WritesEveryWeightWithGptInitsDistributions) {
  const models::GptConfig c = tiny();
  std::vector<RandomGptProgress> calls;
  const RandomGptSummary s =
      write_random_gpt(file("m.safetensors"), c, DType::f32, 7, [&](const RandomGptProgress& p) { calls.push_back(p); });
  EXPECT_EQ(s.file_bytes, fs::file_size(file("m.safetensors")));
  EXPECT_EQ(std::vector<std::string>{"m.safetensors"},
            std::vector<std::string>{fs::directory_iterator(dir_)->path().filename().string()})
      << "no temporary left";

  const GptWeights w = read_gpt_weights(file("m.safetensors"));
  EXPECT_EQ(w.config, c);
  const auto shapes = gpt_weight_shapes(c);
  ASSERT_EQ(w.tensors.size(), shapes.size());
  int64_t params = 0;
  double normalized_within_1 = 0, normalized_count = 0;
  for (const auto& [name, shape] : shapes) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(w.tensors.count(name));
    const Tensor& t = w.tensors.at(name);
    EXPECT_EQ(t.dtype(), DType::f32);
    EXPECT_EQ(t.shape(), shape);
    params += t.numel();
    const float sd = random_gpt_init_std(name, c);
    if (name.ends_with(".bias")) {
      EXPECT_EQ(sd, 0.f);
      for (int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(t.f32()[i], 0.f);
    } else if (name.find("ln_") != std::string::npos) {
      EXPECT_EQ(sd, 0.f);
      for (int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(t.f32()[i], 1.f);
    } else {
      ASSERT_GT(sd, 0.f);
      const Moments m = moments_of(t);
      // >= 2048 draws each: the sample std within ~2.5 standard errors
      EXPECT_NEAR(m.std, sd, 0.05 * sd);
      EXPECT_NEAR(m.mean, 0.0, 0.1 * sd);
      for (int64_t i = 0; i < t.numel(); ++i) normalized_within_1 += std::fabs(t.f32()[i]) < sd;
      normalized_count += (double)t.numel();
    }
  }
  EXPECT_EQ(s.parameters, params);
  // Normal, not merely scaled: 68.27% of the draws within one standard deviation.
  EXPECT_NEAR(normalized_within_1 / normalized_count, 0.6827, 0.01);
  // Gpt::init's scales: wpe 0.01, the residual projections 0.02 / sqrt(2 n_layer), the rest 0.02.
  EXPECT_EQ(random_gpt_init_std("wte.weight", c), 0.02f);
  EXPECT_EQ(random_gpt_init_std("wpe.weight", c), 0.01f);
  EXPECT_EQ(random_gpt_init_std("h.1.attn.c_attn.weight", c), 0.02f);
  EXPECT_EQ(random_gpt_init_std("h.1.mlp.c_fc.weight", c), 0.02f);
  EXPECT_FLOAT_EQ(random_gpt_init_std("h.0.attn.c_proj.weight", c), 0.01f);
  EXPECT_FLOAT_EQ(random_gpt_init_std("h.1.mlp.c_proj.weight", c), 0.01f);
  EXPECT_LT(moments_of(w.tensors.at("h.0.mlp.c_proj.weight")).std, 0.6 * moments_of(w.tensors.at("h.0.mlp.c_fc.weight")).std);

  // Progress after every piece, ending with every tensor and byte.
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back().tensors_done, (int64_t)shapes.size());
  EXPECT_EQ(calls.back().tensors_total, (int64_t)shapes.size());
  EXPECT_EQ(calls.back().bytes_done, calls.back().bytes_total);
  EXPECT_EQ(calls.back().bytes_total, (uint64_t)params * 4);

  // And the training model takes it.
  models::Gpt model(c);
  load_gpt_weights(w, model);
}

TEST_F(RandomGptTest, Bf16StoresTheF32DrawsRounded) {
  const models::GptConfig c = tiny();
  write_random_gpt(file("f.safetensors"), c, DType::f32, 3);
  const RandomGptSummary s = write_random_gpt(file("b.safetensors"), c, DType::bf16, 3);
  EXPECT_EQ(s.file_bytes, fs::file_size(file("b.safetensors")));
  EXPECT_LT(fs::file_size(file("b.safetensors")), fs::file_size(file("f.safetensors")) / 2 + 4096);
  const GptWeights f = read_gpt_weights(file("f.safetensors"));
  const GptWeights b = read_gpt_weights(file("b.safetensors"));
  EXPECT_EQ(b.config, c);
  ASSERT_EQ(b.tensors.size(), f.tensors.size());
  for (const auto& [name, t] : b.tensors) {
    SCOPED_TRACE(name);
    ASSERT_EQ(t.dtype(), DType::bf16);
    const Tensor& w = f.tensors.at(name);
    ASSERT_EQ(t.shape(), w.shape());
    for (int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(t.half_bits()[i], f32_to_bf16(w.f32()[i]));
  }
}

TEST_F(RandomGptTest, TheSeedFixesTheBytesWhateverTheThreads) {
  const models::GptConfig c = tiny();
  write_random_gpt(file("a.safetensors"), c, DType::f32, 11);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(threads == 1 ? 3 : 1);
  write_random_gpt(file("b.safetensors"), c, DType::f32, 11);
  omp_set_num_threads(threads);
  write_random_gpt(file("c.safetensors"), c, DType::f32, 12);
  EXPECT_TRUE(read_file(file("a.safetensors")) == read_file(file("b.safetensors")));
  EXPECT_FALSE(read_file(file("a.safetensors")) == read_file(file("c.safetensors")));
  // A different seed draws different values in every random tensor, the constants the same.
  const GptWeights a = read_gpt_weights(file("a.safetensors")), d = read_gpt_weights(file("c.safetensors"));
  for (const auto& [name, t] : a.tensors) {
    const Tensor& u = d.tensors.at(name);
    const bool same = std::memcmp(t.raw(), u.raw(), t.nbytes()) == 0;
    EXPECT_EQ(same, random_gpt_init_std(name, c) == 0.f) << name;
  }
}

TEST_F(RandomGptTest, RefusesOtherTypesAndLeavesTheTargetAlone) {
  write(file("m.safetensors"), "old");
  const std::string msg = message_of([&] { write_random_gpt(file("m.safetensors"), tiny(), DType::i8, 1); });
  EXPECT_TRUE(has(msg, "f32 or bf16")) << msg;
  models::GptConfig bad = tiny();
  bad.n_head = 3;  // does not divide 64
  const std::string bad_msg = message_of([&] { write_random_gpt(file("m.safetensors"), bad, DType::f32, 1); });
  EXPECT_TRUE(has(bad_msg, file("m.safetensors"))) << bad_msg;
  EXPECT_EQ(read_file(file("m.safetensors")), "old");
  // A directory that does not exist: an error naming the file, nothing written.
  const std::string missing = message_of([&] { write_random_gpt(file("no/m.safetensors"), tiny(), DType::f32, 1); });
  EXPECT_TRUE(has(missing, "no/m.safetensors")) << missing;
}
