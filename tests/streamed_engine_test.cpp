// Weight streaming (EngineOptions::offload_disk): the engine with its weights on disk, read back
// through a ring of buffers, against the same engine in memory, bitwise: prefill then decode, and
// a decode batch wider than the skinny kernel (one streamed pass, run in groups), for f32, bf16,
// quantized and MoE models; the ring's size against the budget; reads per pass; the errors.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine_test_util.h"
#include "gannet/compress/quant_scheme.h"
#include "gannet/compress/quantizer.h"
#include "gannet/core/error.h"
#include "gannet/core/huge_pages.h"
#include "gannet/infer/weight_stream.h"

namespace gannet {
namespace {

using testing::perturbed_model;
using testing::random_ids;
using testing::small_config;
using testing::weights_of;

constexpr int64_t kVocab = 97;

models::Gpt model(const models::GptConfig& c, uint64_t seed) {
  return perturbed_model(c, seed, [](const std::string& n) { return n.find("ln_") != std::string::npos ? 0.3f : 0.05f; });
}

// The streaming options: the ring in the working directory (the build tree, on disk), holding
// `slots` of the largest unit.
infer::EngineOptions streamed(infer::EngineOptions o, int64_t budget_bytes) {
  o.offload_disk = true;
  o.max_resident_bytes = budget_bytes;
  o.offload_dir = ".";
  return o;
}

// Bytes of the largest unit, read from a streaming engine with the ring at two slots.
int64_t largest_unit(const io::GptWeights& w, infer::EngineOptions o) {
  infer::Engine probe(w, streamed(o, int64_t(1) << 40));
  return probe.stream_stats().slot_bytes;
}

void expect_bitwise(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b,
                    const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)), 0) << what << ": step " << i;
}

// B sequences, each a prompt of 5 tokens, then `steps` decode steps of all B together.
std::vector<std::vector<float>> batch_decode(infer::Engine& e, int64_t B, int64_t steps) {
  const std::vector<int32_t> ids = random_ids((5 + steps) * B, kVocab, 7);
  std::vector<std::vector<float>> out;
  for (int64_t b = 0; b < B; ++b) {
    e.reset(b);
    infer::Chunk c{b, std::span<const int32_t>(ids).subspan(b * 5, 5)};
    out.emplace_back(kVocab);
    e.forward(std::span<const infer::Chunk>(&c, 1), out.back().data());
  }
  std::vector<infer::Chunk> chunks(B);
  for (int64_t s = 0; s < steps; ++s) {
    for (int64_t b = 0; b < B; ++b) chunks[b] = {b, std::span<const int32_t>(ids).subspan(5 * B + s * B + b, 1)};
    out.emplace_back(B * kVocab);
    e.forward(chunks, out.back().data());
  }
  return out;
}

// Streamed (ring of two slots, and of every unit) against in memory, bitwise.
void expect_streaming_equals_memory(const io::GptWeights& w, infer::EngineOptions o, const std::string& what) {
  o.max_sequences = 40;  // > kSkinnyMaxRows: a wide streamed decode pass
  const std::vector<int32_t> ids = random_ids(30, kVocab, 3);
  infer::Engine memory(w, o);
  const auto want_seq = testing::prefill_then_decode(memory, ids, 12, kVocab);
  const auto want_batch = batch_decode(memory, 40, 3);
  const int64_t unit = largest_unit(w, o);
  for (int64_t slots : {int64_t(2), int64_t(1000)}) {
    infer::Engine disk(w, streamed(o, slots * unit));
    EXPECT_EQ(disk.stream_stats().slots, std::min<int64_t>(slots, w.config.n_layer + 1)) << what;
    expect_bitwise(testing::prefill_then_decode(disk, ids, 12, kVocab), want_seq, what + ", prefill then decode");
    expect_bitwise(batch_decode(disk, 40, 3), want_batch, what + ", batch of 40");
  }
}

TEST(StreamedEngine, F32AndBf16EqualInMemoryBitwise) {
  const models::Gpt m = model(small_config(kVocab, 64, 4, 32, 3), 1);
  for (const char* f : {"f32", "bf16"}) {
    infer::EngineOptions o;
    o.weights = infer::parse_weight_format(f);
    expect_streaming_equals_memory(weights_of(m), o, f);
  }
}

TEST(StreamedEngine, QuantizedEqualInMemoryBitwise) {
  const models::Gpt m = model(small_config(kVocab, 64, 4, 64, 2), 2);
  for (const char* scheme : {"w8a8", "w4a4", "mixed"}) {
    const io::GptWeights q = compress::quantize_model(weights_of(m), compress::scheme_preset(scheme, testing::options(32)));
    expect_streaming_equals_memory(q, {}, scheme);
  }
}

TEST(StreamedEngine, MoeEqualsInMemoryBitwise) {
  models::GptConfig c = small_config(kVocab, 64, 4, 32, 2);
  c.moe.num_experts = {4};
  c.moe.k = 2;
  c.moe.drop_tokens = false;
  expect_streaming_equals_memory(weights_of(model(c, 3)), {}, "moe top-2");
}

TEST(StreamedEngine, RingStaysWithinTheBudgetAndReadsEachUnitOncePerPass) {
  const models::Gpt m = model(small_config(kVocab, 64, 4, 32, 4), 4);
  const io::GptWeights w = weights_of(m);
  const int64_t unit = largest_unit(w, {});
  infer::Engine e(w, streamed({}, 3 * unit + unit / 2));
  const infer::Engine::StreamStats s = e.stream_stats();
  EXPECT_EQ(s.slots, 3);
  EXPECT_LE(s.slots * s.slot_bytes, 3 * unit + unit / 2);
  const std::vector<int32_t> ids = random_ids(8, kVocab, 5);
  (void)testing::prefill_then_decode(e, ids, 4, kVocab);  // 5 passes
  const int64_t after = e.stream_stats().bytes_read;
  (void)testing::prefill_then_decode(e, ids, 7, kVocab);  // 2 passes
  // Each pass reads every unit once; the reader keeps at most `slots` units ahead.
  EXPECT_GE(e.stream_stats().bytes_read - after, 2 * s.bytes_per_pass - s.slots * s.slot_bytes);
  EXPECT_LE(e.stream_stats().bytes_read - after, 2 * s.bytes_per_pass + s.slots * s.slot_bytes);

  // A ring of every unit reads each unit once, then never again.
  infer::Engine all(w, streamed({}, 1000 * unit));
  (void)testing::prefill_then_decode(all, ids, 4, kVocab);
  const int64_t once = all.stream_stats().bytes_read;
  (void)testing::prefill_then_decode(all, ids, 4, kVocab);
  EXPECT_EQ(all.stream_stats().bytes_read, once);
  EXPECT_EQ(all.stream_stats().bytes_per_pass, 0);
}

// An MoE block's experts are read when a pass routes to them: one token (top-1) reads one expert
// per MoE block, so less than the file; a long prompt reaches more experts; with the ring holding
// every unit, experts once read stay, so the same prompt again reads nothing.
TEST(StreamedEngine, ReadsOnlyTheExpertsAPassRoutesTo) {
  models::GptConfig c = small_config(kVocab, 96, 4, 32, 4);
  c.moe.num_experts = {8};
  c.moe.k = 1;
  c.moe.drop_tokens = false;
  // A strong random router, so that a long prompt's tokens spread over the experts.
  const models::Gpt m = perturbed_model(c, 6, [](const std::string& n) {
    return n.find("moe.gate") != std::string::npos ? 3.f : n.find("ln_") != std::string::npos ? 0.3f : 0.05f;
  });
  infer::EngineOptions o;
  o.max_sequences = 3;
  infer::Engine e(weights_of(m), streamed(o, int64_t(1) << 40));
  const std::vector<int32_t> ids = random_ids(80, kVocab, 8);
  std::vector<float> logits(kVocab);
  auto run = [&](int64_t seq, int64_t begin, int64_t n) {
    infer::Chunk c{seq, std::span<const int32_t>(ids).subspan(begin, n)};
    e.forward(std::span<const infer::Chunk>(&c, 1), logits.data());
    return e.stream_stats().bytes_read;
  };
  const int64_t file = e.stream_stats().file_bytes, one = run(0, 0, 1);
  EXPECT_LT(one, file);
  const int64_t prompt = run(1, 1, 79);
  EXPECT_GT(prompt, one);
  EXPECT_LE(prompt, file);
  EXPECT_EQ(run(2, 1, 79), prompt);
}

TEST(StreamedEngine, RefusesABudgetBelowTwoUnitsAndAnInMemoryDirectory) {
  const io::GptWeights w = weights_of(model(small_config(kVocab, 64, 4, 32, 2), 5));
  const int64_t unit = largest_unit(w, {});
  try {
    infer::Engine e(w, streamed({}, 2 * unit - 1));
    FAIL() << "a budget below two units was taken";
  } catch (const Error& err) {
    const std::string what = err.what();
    EXPECT_NE(what.find("--max-resident-mb"), std::string::npos) << what;
    EXPECT_NE(what.find("fewer than two units"), std::string::npos) << what;
  }
  if (std::filesystem::is_directory("/dev/shm")) {
    infer::EngineOptions o = streamed({}, 4 * unit);
    o.offload_dir = "/dev/shm";
    try {
      infer::Engine e(w, o);
      FAIL() << "a tmpfs directory was taken";
    } catch (const Error& err) {
      EXPECT_NE(std::string(err.what()).find("streaming needs a directory on disk"), std::string::npos) << err.what();
    }
  }
}

// A file shorter than its units say (truncated while streaming) fails the acquire of the unit it
// cuts, with the file's name and the bytes missing, after serving the units before it.
TEST(WeightStream, TruncatedFileIsAClearError) {
  const int64_t A = infer::kDirectIoAlign;
  const std::string path = "./weight_stream_truncated.bin";  // the build tree: on disk
  {
    std::ofstream f(path, std::ios::binary);
    std::string bytes(2 * A, '\0');
    for (int64_t i = 0; i < 2 * A; ++i) bytes[i] = (char)(i % 251);
    f << bytes;
  }
  const int fd = open(path.c_str(), O_RDONLY | O_DIRECT);
  ASSERT_GE(fd, 0);
  std::filesystem::remove(path);
  {
    infer::WeightStream s(fd, "test file", {{0, A}, {A, A}, {2 * A, A}}, allocate_huge_pages(2 * A, "test"), 2, A);
    const int64_t s0 = s.acquire(0);
    EXPECT_EQ((unsigned char)s.slot_data(s0)[A - 1], (A - 1) % 251);
    s.release(0);
    const int64_t s1 = s.acquire(1);
    EXPECT_EQ((unsigned char)s.slot_data(s1)[5], (A + 5) % 251);
    s.release(1);
    try {
      s.acquire(2);
      FAIL() << "a unit past the end of the file was served";
    } catch (const Error& err) {
      const std::string what = err.what();
      EXPECT_NE(what.find("test file"), std::string::npos) << what;
      EXPECT_NE(what.find("truncated"), std::string::npos) << what;
    }
    EXPECT_THROW(s.release(2), Error);  // never acquired
  }
}

}  // namespace
}  // namespace gannet
