// ZeroQuant's LKD on a classifier encoder (compress/encoder_lkd.h): the errors it reports are the
// blocks' output errors computed directly, distillation lowers them, and what it cannot improve it
// leaves at the teacher's weights.
#include <gtest/gtest.h>

#include "gannet/autograd/distill_ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/compress/encoder_lkd.h"
#include "gannet/compress/simulated_quant.h"
#include "gannet/compress/xtc_forward.h"
#include "gannet/core/error.h"
#include "gannet/core/rng.h"
#include "gannet/data/classification_set.h"
#include "gannet/io/encoder_checkpoint.h"
#include "command_output.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
namespace c = gannet::compress;

namespace {
models::EncoderConfig config() {
  models::EncoderConfig k;
  k.vocab_size = 41;
  k.n_ctx = 10;
  k.n_layer = 2;
  k.n_head = 2;
  k.n_embd = 64;
  k.num_classes = 3;
  return k;
}

// GPT-2's initialization plus noise: weights large enough that int4 rounding matters.
void init(models::Encoder& m, uint64_t seed) {
  m.init(seed);
  Rng rng(seed);
  for (const nn::Parameter& p : m.parameters())
    for (int64_t i = 0; i < p.var.value().numel(); ++i) p.var.value().f32()[i] += 0.1f * rng.normal();
}

std::vector<c::EncoderWindows> windows(int64_t batches, uint64_t seed) {
  Rng rng(seed);
  std::vector<c::EncoderWindows> out;
  for (int64_t b = 0; b < batches; ++b) {
    c::EncoderWindows w{Tensor::empty({3, 10}, DType::i32), Tensor::empty({3, 10}, DType::u8)};
    for (int64_t i = 0; i < 30; ++i) {
      w.tokens.data<int32_t>()[i] = (int32_t)rng.below(41);
      w.mask.data<uint8_t>()[i] = i % 10 < 10 - (i / 10) * 3;  // 10, 7 and 4 real tokens
    }
    out.push_back(w);
  }
  return out;
}

std::vector<std::array<c::NmProductForm, 4>> w4a4_forms(int64_t layers) {
  c::NmProductForm f;
  f.quant.bits = 4;
  f.quant.group = 32;
  f.quant.symmetric = true;
  f.input = io::ActivationQuant{true, 0.f, 4, false};
  std::vector<std::array<c::NmProductForm, 4>> forms((size_t)layers);
  for (auto& l : forms) l.fill(f);
  return forms;
}

// Block l's output error with its products as `forms` say, computed here from the weights.
double block_error(const models::Encoder& teacher, const models::Encoder& student,
                   const std::vector<std::array<c::NmProductForm, 4>>& forms, const c::EncoderWindows& w,
                   int64_t l) {
  struct Form : c::StudentForm {
    const std::vector<std::array<c::NmProductForm, 4>>& f;
    explicit Form(const std::vector<std::array<c::NmProductForm, 4>>& forms) : f(forms) {}
    autograd::Var weight(int64_t layer, int p, const autograd::Var& x) const override {
      return c::fake_quantize_weight(x, f[(size_t)layer][(size_t)p].quant);
    }
    io::ActivationQuant input(int64_t layer, int p) const override { return f[(size_t)layer][(size_t)p].input; }
  } form(forms);
  autograd::NoGrad ng;
  const auto h = c::traced_forward(teacher, nullptr, w.tokens, w.mask, {true}).hidden;
  const autograd::Var y =
      c::student_block_forward(student.trunk().block(l), l, h[(size_t)l], 3, 10, false, w.mask, &form, nullptr);
  return autograd::mse(y, h[(size_t)l + 1].value()).value().f32()[0];
}
}  // namespace

TEST(EncoderLkd, ReportsTheBlocksErrorsAndLowersThem) {
  models::Encoder teacher(config()), student(config());
  init(teacher, 3);
  init(student, 3);
  const auto forms = w4a4_forms(2);
  const auto batches = windows(2, 5);
  c::LkdOptions o;
  o.steps = 15;
  o.lr = 1e-3f;
  int64_t calls = 0;
  const auto reports = c::distill_encoder_blocks(teacher, student, forms, batches, o,
                                                 [&](int64_t done, int64_t total, const std::string&) {
                                                   EXPECT_EQ(done, ++calls);
                                                   EXPECT_EQ(total, 30);
                                                 });
  EXPECT_EQ(calls, 30);
  ASSERT_EQ(reports.size(), 2u);
  for (const c::LkdLayerReport& r : reports) {
    // Plain rounding's error, recomputed from the teacher's weights.
    const double want = (block_error(teacher, teacher, forms, batches[0], r.layer) +
                         block_error(teacher, teacher, forms, batches[1], r.layer)) / 2;
    EXPECT_NEAR(r.mse_before, want, 1e-6 * want) << r.layer;
    EXPECT_FALSE(r.kept_plain) << r.layer;
    EXPECT_LT(r.mse_after, 0.8 * r.mse_before) << r.layer;
    const double got = (block_error(teacher, student, forms, batches[0], r.layer) +
                        block_error(teacher, student, forms, batches[1], r.layer)) / 2;
    EXPECT_NEAR(r.mse_after, got, 1e-6 * got) << r.layer;
  }
}

// A rate so large that every step hurts: each block keeps the teacher's weights exactly.
TEST(EncoderLkd, KeepsTheTeachersWeightsWhereDistillationHurts) {
  models::Encoder teacher(config()), student(config());
  init(teacher, 4);
  init(student, 4);
  c::LkdOptions o;
  o.steps = 3;
  o.lr = 50.f;
  const auto reports = c::distill_encoder_blocks(teacher, student, w4a4_forms(2), windows(1, 6), o);
  for (const c::LkdLayerReport& r : reports) {
    EXPECT_TRUE(r.kept_plain) << r.layer;
    EXPECT_EQ(r.mse_after, r.mse_before) << r.layer;
  }
  for (size_t i = 0; i < teacher.parameters().size(); ++i) {
    const Tensor &a = teacher.parameters()[i].var.value(), &b = student.parameters()[i].var.value();
    for (int64_t j = 0; j < a.numel(); ++j) ASSERT_EQ(a.f32()[j], b.f32()[j]) << teacher.parameters()[i].name;
  }
}

TEST(EncoderLkd, BadArgumentsThrow) {
  models::Encoder teacher(config()), student(config());
  c::LkdOptions o;
  o.steps = 1;
  EXPECT_THROW(c::distill_encoder_blocks(teacher, student, w4a4_forms(1), windows(1, 1), o), Error);  // layers
  auto sparse = w4a4_forms(2);
  sparse[1][2].pattern = NmPattern{2, 4};
  EXPECT_THROW(c::distill_encoder_blocks(teacher, student, sparse, windows(1, 1), o), Error);
  EXPECT_THROW(c::distill_encoder_blocks(teacher, student, w4a4_forms(2), {}, o), Error);
  models::EncoderConfig other = config();
  other.n_embd = 32;
  models::Encoder narrow(other);
  EXPECT_THROW(c::distill_encoder_blocks(teacher, narrow, w4a4_forms(2), windows(1, 1), o), Error);
}

class EncoderLkdCli : public TempDirTest {
 protected:
  // A classifier checkpoint and a split of 12 windows it can read.
  void SetUp() override {
    TempDirTest::SetUp();
    models::Encoder m(config());
    init(m, 8);
    io::save_encoder_checkpoint(file("enc.safetensors"), m, nullptr, {});
    data::ClassificationSet set;
    set.task = "toy";
    set.split = "train";
    set.classes = {"a", "b", "c"};
    set.doc_ids = {"d0", "d1", "d2"};
    set.window = 10;
    set.vocab_size = 41;
    set.source = "test";
    set.tokens = Tensor::empty({12, 10}, DType::i32);
    set.mask = Tensor::empty({12, 10}, DType::u8);
    set.labels = Tensor::empty({12}, DType::i32);
    set.doc = Tensor::empty({12}, DType::i32);
    for (int64_t i = 0; i < 120; ++i) {
      set.tokens.data<int32_t>()[i] = (int32_t)((i * 7) % 41);
      set.mask.data<uint8_t>()[i] = 1;
    }
    for (int64_t i = 0; i < 12; ++i) set.labels.data<int32_t>()[i] = set.doc.data<int32_t>()[i] = (int32_t)(i % 3);
    data::write_classification_set(file("train.safetensors"), set);
  }
  std::pair<int, std::string> quantize(const std::string& args) {
    return command_status(str(GANNET_BINARY, " quantize -i ", file("enc.safetensors"), " -o ", file("q.safetensors"),
                              " --scheme w4a4 --no-progress ", args, " 2>&1"));
  }
};

TEST_F(EncoderLkdCli, QuantizesWithLkdAndRefusesWhatItCannotUse) {
  const std::string calib = " --calib " + file("train.safetensors");
  auto [rc, out] = quantize("--lkd-steps 3 --calib-batches 2 --calib-batch 4" + calib);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(has(out, "block 1: output mse") && has(out, "LKD 3 steps per block") && has(out, "8 windows of")) << out;
  EXPECT_TRUE(std::filesystem::exists(file("q.safetensors")));
  std::filesystem::remove(file("q.safetensors"));
  for (const auto& [args, part] : std::vector<std::pair<std::string, std::string>>{
           {"--lkd-steps 3", "needs --calib"},
           {calib, "only used by --lkd-steps"},
           {"--lkd-steps 3 --calib-batches 4 --calib-batch 4" + calib, "16 calibration windows asked for, the split has 12"},
           {"--lkd-steps 3 --data-free", "an encoder takes"}}) {
    std::tie(rc, out) = quantize(args);
    EXPECT_EQ(rc, 1) << args << ": " << out;
    EXPECT_TRUE(has(out, part)) << args << ": " << out;
    EXPECT_FALSE(std::filesystem::exists(file("q.safetensors"))) << args;
  }
}
