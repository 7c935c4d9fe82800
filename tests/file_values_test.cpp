// Values read from files are checked before use (issue 22, classes 1-3 and 7): each test writes a
// small corrupt file and expects the exact error, never a crash, a wrapped size or a huge
// allocation. Class 1: values checked in the type they are used in, and exceptions inside OpenMP
// regions become ordinary errors. Class 2: size arithmetic on header values cannot overflow.
// Class 3: sizes from headers are bounded (sane limits, the file's actual contents) first.
// Class 7: messages quoting file bytes are escaped; non-regular files are refused at once.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "engine_test_util.h"
#include "gannet/compress/quant_scheme.h"
#include "gannet/compress/quantizer.h"
#include "gannet/core/atomic_file.h"
#include "gannet/core/checked_math.h"
#include "gannet/core/escape.h"
#include "gannet/core/mapped_file.h"
#include "gannet/core/parallel_errors.h"
#include "gannet/data/difficulty.h"
#include "gannet/data/token_file.h"
#include "gannet/io/checkpoint.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/io/model_config.h"
#include "gannet/io/safetensors.h"
#include "gannet/io/sharded_checkpoint.h"
#include "gannet/kernels/layernorm_quantize.h"
#include "gannet/train/loss_plot.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
namespace c = gannet::compress;

namespace {

class FileValues : public TempDirTest {
 protected:
  // A tiny float model written as a gannet model file; returns its path.
  std::string float_model(const std::string& name) {
    models::Gpt m(small_config(67, 16, 2, 32));
    m.init(3);
    io::write_gpt_weights(file(name), weights_of(m));
    return file(name);
  }
  // A tiny w8a8 model (int8 activations) written as a gannet model file.
  std::string quantized_model(const std::string& name) {
    models::Gpt m(small_config(67, 16, 2, 32));
    m.init(3);
    io::write_gpt_weights(file(name), c::quantize_model(weights_of(m), c::scheme_preset("w8a8", options(32))));
    return file(name);
  }
};

// Little-endian bytes of v.
template <class T>
std::string le(T v) {
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &v, sizeof(T));
  return s;
}

std::string token_header(uint32_t bytes_per_token, uint64_t count, uint32_t vocab) {
  return std::string("GNTOK001", 8) + le<uint32_t>(1) + le(bytes_per_token) + le(count) + le(vocab) +
         le<uint32_t>(0);
}

std::string index_header(uint32_t kind, uint64_t count, uint64_t samples, uint64_t seq_len, uint64_t tokens) {
  std::string metric(48, '\0');
  std::memcpy(metric.data(), "seqlen", 6);
  return std::string("GNDIDX01", 8) + le<uint32_t>(1) + le(kind) + le(count) + le(samples) + le(seq_len) + le(tokens) +
         metric;
}

// A safetensors file whose header is `header` (no data).
std::string safetensors_bytes(const std::string& header) { return le<uint64_t>(header.size()) + header; }

}  // namespace

// ---- Class 1: values checked in the type they are used in; no exception escapes a region ----

TEST_F(FileValues, ActivationScaleThatIsInfiniteAsAFloatIsRefused) {
  const io::SafeTensors good = io::SafeTensors::open(quantized_model("q.safetensors"));
  const std::string p = rewrite_safetensors(good, file("1e39.safetensors"), [](auto&) {}, [](auto& meta) {
    auto j = nlohmann::json::parse(meta["quantization"]);
    j["weights"]["h.0.attn.c_attn.weight"]["activation_scale"] = 1e39;  // finite double, inf float
    meta["quantization"] = j.dump();
  });
  const std::string m = message_of([&] { io::read_gpt_weights(p); });
  EXPECT_TRUE(has(m, "'h.0.attn.c_attn.weight' has activation_scale 1e+39 (expected 0 or a positive float")) << m;
  // A positive value that underflows to float 0 would silently switch to dynamic scales.
  const std::string tiny = rewrite_safetensors(good, file("tiny.safetensors"), [](auto&) {}, [](auto& meta) {
    auto j = nlohmann::json::parse(meta["quantization"]);
    j["weights"]["h.0.attn.c_attn.weight"]["activation_scale"] = 1e-50;
    meta["quantization"] = j.dump();
  });
  EXPECT_TRUE(has(message_of([&] { io::read_gpt_weights(tiny); }), "has activation_scale 1e-50"));
}

TEST_F(FileValues, WeightScalesMustBeFiniteAndNonNegative) {
  const io::SafeTensors good = io::SafeTensors::open(quantized_model("q.safetensors"));
  for (float bad : {std::numeric_limits<float>::infinity(), std::nanf(""), -1.f}) {
    const std::string p = rewrite_safetensors(good, file("scale.safetensors"), [&](auto& ts) {
      for (auto& [name, t] : ts)
        if (name == "h.1.mlp.c_fc.weight.scale") {
          t = t.clone();
          t.f32()[3] = bad;
        }
    }, [](auto&) {});
    const std::string m = message_of([&] { io::read_gpt_weights(p); });
    EXPECT_TRUE(has(m, "quantized tensor 'h.1.mlp.c_fc.weight': scale ")) << m;
    EXPECT_TRUE(has(m, " of row 3, group 0 is not a finite non-negative number")) << m;
  }
}

TEST(ParallelErrors, AnExceptionInsideARegionIsRethrownAfterIt) {
  ParallelErrors errors;
  std::vector<int> done(1000, 0);
#pragma omp parallel for schedule(static)
  for (int i = 0; i < 1000; ++i)
    errors.run([&] {
      if (i == 517) fail("element 517 is bad");
      done[(size_t)i] = 1;
    });
  EXPECT_TRUE(errors.failed());
  EXPECT_EQ(message_of([&] { errors.rethrow(); }), "element 517 is bad");
  ParallelErrors none;
#pragma omp parallel
  none.run([] {});
  EXPECT_NO_THROW(none.rethrow());
}

TEST(ParallelErrors, KernelInsideARegionReportsAnInfiniteScale) {
  // Large enough to run on the OpenMP threads: a throw from its body used to end the process.
  const int64_t M = 64, C = 512;
  std::vector<float> x((size_t)(M * C), 0.5f), gamma((size_t)C, 1.f), beta((size_t)C, 0.f), scales((size_t)M);
  std::vector<int8_t> q((size_t)(M * C));
  const std::string m = message_of([&] {
    kernels::layernorm_quantize_rows(x.data(), gamma.data(), beta.data(), M, C, 1e-5f,
                                     std::numeric_limits<float>::infinity(), q.data(), C, scales.data());
  });
  EXPECT_EQ(m, "layernorm_quantize_rows: static scale inf is not finite");
}

// ---- Class 2: size arithmetic on header values cannot overflow ----

TEST(CheckedMath, OverflowIsAnError) {
  EXPECT_EQ(checked_mul<uint64_t>(3, 5, "x"), 15u);
  EXPECT_EQ(message_of([] { checked_mul<uint64_t>(uint64_t(1) << 61, 8, "count"); }),
            "count: 2305843009213693952 * 8 overflows");
  EXPECT_EQ(message_of([] { checked_add<int64_t>(INT64_MAX, 1, "sum"); }), "sum: 9223372036854775807 + 1 overflows");
  EXPECT_FALSE(mul_no_overflow<int64_t>(INT64_MAX / 2 + 1, 2));
  EXPECT_FALSE(to_finite_float(1e39));
  EXPECT_FALSE(to_finite_float(std::nan("")));
  EXPECT_EQ(to_finite_float(2.5).value(), 2.5f);
}

TEST_F(FileValues, DifficultyIndexCountThatWrapsIsRefused) {
  // 96 + 2^61 * 8 wraps to 96: the file size the header "agrees" with.
  const uint64_t count = uint64_t(1) << 61;
  write(file("s.bin"), index_header(1, count, count, 8, 1000));
  write(file("m.bin"), index_header(2, count, count, 8, 1000));
  EXPECT_EQ(message_of([&] { data::DifficultyIndex::open(file("s.bin"), file("m.bin")); }),
            "difficulty index " + file("s.bin") + ": entry count 2305843009213693952 is too large");
}

TEST_F(FileValues, DifficultyIndexSamplesMustFitItsTokens) {
  // Two samples claimed for 10 tokens at seq_len 8 (which hold one).
  write(file("s.bin"), index_header(1, 2, 2, 8, 10) + le<int64_t>(0) + le<int64_t>(1));
  write(file("m.bin"), index_header(2, 2, 2, 8, 10) + le<double>(1) + le<double>(2));
  EXPECT_EQ(message_of([&] { data::DifficultyIndex::open(file("s.bin"), file("m.bin")); }),
            "difficulty index " + file("s.bin") + ": 2 samples do not fit seq_len 8 over 10 tokens");
}

TEST_F(FileValues, TokenCountThatWrapsIsRefused) {
  // 2^63 tokens of 2 bytes: 2^64 bytes, 0 after wrapping, "matches" an empty payload.
  write(file("t.tok"), token_header(2, uint64_t(1) << 63, 100));
  const std::string m = message_of([&] { data::TokenFile::open(file("t.tok")); });
  EXPECT_EQ(m, "token file " + file("t.tok") +
                   " is truncated: header says 9223372036854775808 tokens of 2 bytes but the file has 0 bytes after "
                   "its header");
}

TEST_F(FileValues, ManifestShapeThatOverflowsIsRefused) {
  nlohmann::json j = {{"format", "gannet-sharded-checkpoint"},
                      {"version", 1},
                      {"model_config", io::gpt_config_to_json(small_config(67, 16, 2, 32))},
                      {"layout", {{"world", 1}, {"tensor", 1}, {"expert", 1}, {"data", 1}, {"zero_stage", 0}}},
                      {"train_state", {{"step", 0}, {"rng", {0, 0, 0, 0}}, {"train_config", ""}}},
                      {"shards", {{{"file", "a.safetensors"}, {"rank", 0}, {"bytes", 100}}}},
                      {"tensors",
                       {{{"name", "wte.weight"},
                         {"dtype", "F32"},
                         {"shape", {int64_t(1) << 40, int64_t(1) << 40}},
                         {"pieces", nlohmann::json::array()}}}}};
  EXPECT_EQ(message_of([&] { io::parse_manifest(j.dump(), "m.json"); }),
            "m.json: tensor 'wte.weight' [1099511627776, 1099511627776]: 1099511627776 * 1099511627776 overflows");
  // Within int64, but more than the shard files hold: refused before a coverage map is allocated.
  j["tensors"][0]["shape"] = {int64_t(1) << 20, int64_t(1) << 20};
  EXPECT_EQ(message_of([&] { io::parse_manifest(j.dump(), "m.json"); }),
            "m.json: the tensors hold 4398046511104 bytes, more than the shard files' 100");
}

// ---- Class 3: sizes from headers are bounded before anything is allocated ----

TEST_F(FileValues, TokenFileVocabularyIsBounded) {
  write(file("v.tok"), token_header(4, 1, 2147483647) + le<uint32_t>(5));
  EXPECT_EQ(message_of([&] { data::TokenFile::open(file("v.tok")); }),
            "token file " + file("v.tok") + ": vocab size 2147483647 is outside [1, 4194304]");
  write(file("w.tok"), token_header(2, 1, 70000) + le<uint16_t>(5));
  EXPECT_EQ(message_of([&] { data::TokenFile::open(file("w.tok")); }),
            "token file " + file("w.tok") + ": vocab size 70000 does not fit its 2-byte tokens");
  // A large declared vocabulary that the tokens use little of: counted and sized by what is used.
  write(file("u.tok"), token_header(4, 3, 4000000) + le<uint32_t>(7) + le<uint32_t>(2) + le<uint32_t>(7));
  const data::TokenFile f = data::TokenFile::open(file("u.tok"));
  EXPECT_EQ(f.max_token(), 7);
  const std::vector<double> nlp = data::unigram_neg_log_p(f);
  ASSERT_EQ(nlp.size(), 8u);
  EXPECT_NEAR(nlp[7], -std::log(2.0 / 3.0), 1e-12);
  EXPECT_TRUE(std::isinf(nlp[6]));
}

TEST_F(FileValues, CheckpointConfigIsBoundedAndMatchesItsTensors) {
  const io::SafeTensors good = io::SafeTensors::open(float_model("m.safetensors"));
  auto with_config = [&](const std::string& name, const std::string& key, int64_t value) {
    return rewrite_safetensors(good, file(name), [](auto&) {}, [&](auto& meta) {
      auto j = nlohmann::json::parse(meta["model_config"]);
      j[key] = value;
      meta["model_config"] = j.dump();
    });
  };
  std::string m = message_of([&] { io::read_checkpoint_config(with_config("a.safetensors", "n_layer", 100000000)); });
  EXPECT_TRUE(has(m, "model config: n_layer 100000000 is larger than the limit 1024")) << m;
  m = message_of([&] { io::read_gpt_weights(file("a.safetensors")); });
  EXPECT_TRUE(has(m, "n_layer 100000000 is larger than the limit 1024")) << m;
  // Within the limits, but not what the file holds: refused before a model is built from it.
  m = message_of([&] { io::read_checkpoint_config(with_config("b.safetensors", "n_layer", 900)); });
  EXPECT_TRUE(has(m, "needs tensor 'h.899.ln_1.weight', which is missing")) << m;
  m = message_of([&] { io::read_checkpoint_config(with_config("c.safetensors", "n_layer", 1)); });
  EXPECT_TRUE(has(m, "holds tensor 'h.1.ln_1.weight', but model config")) << m;
  m = message_of([&] { io::read_checkpoint_config(with_config("d.safetensors", "n_ctx", 100000)); });
  EXPECT_TRUE(has(m, "tensor 'wpe.weight' is [16, 32], but model config")) << m;
  EXPECT_TRUE(has(m, "needs [100000, 32]")) << m;
}

TEST(QuantGroupLimit, GroupWiderThanTheRowsIsRefused) {
  c::WeightQuantSpec s;
  s.group = 1048576;
  EXPECT_EQ(message_of([&] { s.validate(); }),
            "weight quantization: group size 1048576 is not supported (a positive multiple of 32 up to 65536, or 0 "
            "for one scale per row)");
  // A group wider than the rows is one group per row, not rows padded up to the group.
  s.group = 4096;
  EXPECT_EQ(s.group_for(24), 32);
  EXPECT_EQ(s.padded_width(24), 32);
  EXPECT_EQ(s.group_for(8192), 4096);
  EXPECT_EQ(s.padded_width(8000), 8192);
  models::Gpt m(small_config(67, 16, 2, 32));
  m.init(1);
  const io::GptWeights q = c::quantize_model(weights_of(m), c::scheme_preset("w8a8", options(4096)));
  const io::QuantizedTensor& fc = q.quantized.at("h.0.mlp.c_proj.weight");  // 128 input columns
  EXPECT_EQ(fc.group, 128);
  EXPECT_EQ(fc.padded_in, 128);
  EXPECT_EQ(q.quantized.at("h.0.attn.c_attn.weight").padded_in, 32);
}

// ---- Class 7: escaped file bytes; non-regular files refused without blocking ----

TEST(EscapeBytes, NulControlAndInvalidUtf8AreEscaped) {
  EXPECT_EQ(escape_bytes(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(escape_bytes("caf\xc3\xa9 \xe2\x82\xac"), "caf\xc3\xa9 \xe2\x82\xac");  // well-formed UTF-8 kept
  EXPECT_EQ(escape_bytes("\xff\xc3(\n\x7f"), "\\xff\\xc3(\\x0a\\x7f");
  EXPECT_EQ(escape_bytes("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
  EXPECT_EQ(escape_bytes("\xc0\xaf"), "\\xc0\\xaf");            // overlong
}

TEST_F(FileValues, SafetensorsErrorsEscapeTheFileBytes) {
  // A tensor name with a NUL (JSON \u0000) and a dtype of invalid UTF-8 (raw byte 0xff in the
  // header is not valid JSON either; the parser's excerpt of it is escaped too).
  write(file("nul.safetensors"), safetensors_bytes(R"({"a\u0000b": {"dtype": "Q9", "shape": [], "data_offsets": [0, 0]}})"));
  EXPECT_EQ(message_of([&] { io::SafeTensors::open(file("nul.safetensors")); }),
            file("nul.safetensors") + ": not a valid safetensors file: tensor 'a\\x00b': unknown dtype 'Q9'");
  write(file("utf8.safetensors"), safetensors_bytes("{\"\xff\": 1}"));
  const std::string m = message_of([&] { io::SafeTensors::open(file("utf8.safetensors")); });
  EXPECT_TRUE(has(m, "header is not valid JSON")) << m;
  EXPECT_FALSE(has(m, "\xff")) << m;
  EXPECT_TRUE(has(m, "\\xff")) << m;
}

TEST_F(FileValues, NonRegularFilesAreRefusedWithoutBlocking) {
  ASSERT_EQ(::mkfifo(file("fifo").c_str(), 0600), 0);
  // Opening a FIFO for reading would block until a writer came; the check is non-blocking.
  EXPECT_EQ(message_of([&] { MappedFile::open(file("fifo")); }),
            "cannot open " + file("fifo") + ": a FIFO, not a regular file");
  EXPECT_EQ(message_of([&] { read_file(file("fifo")); }), "cannot open " + file("fifo") + ": a FIFO, not a regular file");
  EXPECT_EQ(message_of([&] { io::SafeTensors::open(file("fifo")); }),
            "cannot open " + file("fifo") + ": a FIFO, not a regular file");
  EXPECT_EQ(message_of([&] { train::read_run_log(file("fifo"), "run"); }),
            "cannot open " + file("fifo") + ": a FIFO, not a regular file");
  EXPECT_EQ(message_of([&] { data::TokenFile::open(dir_.string()); }),
            "cannot open " + dir_.string() + ": a directory, not a regular file");
  EXPECT_EQ(message_of([&] { read_file("/dev/null"); }), "cannot open /dev/null: a character device, not a regular file");
}
