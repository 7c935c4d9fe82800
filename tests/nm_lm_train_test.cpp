// NxMiFormer on the GPT (task "nxm_lm"): the student forward without a form is the GPT's own; an
// ADMM 2:4 int8 student distilled from a small teacher stays near the teacher's perplexity with
// N:M weights, resumes exactly, and `gannet compress` reports it beside the teacher; the
// encoder-only distillation terms are one-line errors.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "gannet/autograd/tape.h"
#include "gannet/compress/gpt_student_forward.h"
#include "gannet/compress/nm_mask.h"
#include "gannet/core/rng.h"
#include "gannet/data/token_file.h"
#include "gannet/io/checkpoint.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/io/safetensors.h"
#include "gannet/train/evaluate.h"
#include "gannet/train/prepared_token_files.h"
#include "gannet/train/trainer.h"
#include "checkpoint_tensors.h"
#include "command_output.h"
#include "test_files.h"

using namespace gannet;
using gannet::testing::checkpoint_tensors;
using gannet::testing::has;
using gannet::testing::message_of;

namespace {

class NmLmTrain : public gannet::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    Rng rng(7);  // a noisy repeating pattern, so that the loss can fall
    for (auto [name, n] : {std::pair<const char*, int>{"train.tok", 6000}, {"val.tok", 800}}) {
      std::vector<int32_t> t(n);
      for (int i = 0; i < n; ++i) t[i] = rng.uniform() < 0.8f ? (i * 7) % 31 : (int32_t)rng.below(40);
      data::write_token_file((dir_ / name).string(), t, 40);
    }
  }
  std::string common(const std::string& out, int steps) const {
    return R"("data": {"dir": ")" + dir_.string() + R"(", "seq_len": 16}, "train_micro_batch_size_per_gpu": 8,
      "train_steps": )" + std::to_string(steps) + R"(, "optimizer": {"type": "AdamW", "params": {"lr": 1e-2}},
      "scheduler": {"type": "WarmupCosineLR", "params": {"warmup_num_steps": 2}},
      "eval": {"interval": 0, "batches": 0}, "checkpoint": {"dir": ")" + file(out) + R"(", "interval": 2})";
  }
  std::string teacher() {
    if (teacher_.empty())
      teacher_ = run(R"({"model": {"vocab_size": 40, "n_ctx": 16, "n_layer": 2, "n_head": 2, "n_embd": 32}, )" +
                     common("teacher", 60) + "}")
                     .checkpoint;
    return teacher_;
  }
  std::string nxm_lm(const std::string& out, int steps, const std::string& extra = "") {
    return R"({"task": "nxm_lm", "teacher": {"checkpoint": ")" + teacher() + R"("}, )" + common(out, steps) + R"(,
      "compression_training": {
        "sparse_pruning": {"shared_parameters": {"enabled": true, "method": "admm", "schedule_offset_end": 10,
                                                 "schedule_offset_stride": 2, "admm_rho": 0.01, "admm_rho_growth": 1.5},
          "different_groups": {"sp1": {"params": {"nm_pattern": "2:4"}, "modules": ["attn", "mlp"]}}},
        "weight_quantization": {"shared_parameters": {"enabled": true, "group_size": 64},
          "different_groups": {"wq1": {"params": {"start_bits": 8, "target_bits": 8}, "modules": ["attn", "mlp"]}}},
        "activation_quantization": {"shared_parameters": {"enabled": true},
          "different_groups": {"aq1": {"params": {"bits": 8}, "modules": ["attn", "mlp"]}}}})" +
           extra + "}";
  }
  static train::TrainResult run(const std::string& text, train::TrainOptions opt = {}) {
    opt.progress = false;
    return train::run_training(train::parse_train_config(text, "c.json"), opt);
  }

  std::string teacher_;
};

TEST_F(NmLmTrain, StudentForwardWithoutAFormIsTheGptsOwn) {
  models::Gpt g(io::read_checkpoint_config(teacher()));
  io::load_checkpoint(teacher(), g, nullptr, nullptr);
  Tensor tokens = Tensor::empty({3, 16}, DType::i32);
  for (int i = 0; i < 48; ++i) tokens.data<int32_t>()[i] = (i * 5) % 40;
  autograd::NoGrad ng;
  const Tensor mine = compress::gpt_student_logits(g, nullptr, tokens).value(), own = g.logits(tokens).value();
  ASSERT_EQ(mine.numel(), own.numel());
  EXPECT_EQ(std::memcmp(mine.raw(), own.raw(), own.nbytes()), 0);
}

TEST_F(NmLmTrain, AdmmStudentStaysNearTheTeacherWithNmWeightsAndResumesExactly) {
  const train::TrainResult r = run(nxm_lm("s", 24));
  ASSERT_EQ(r.validation.keys, (std::vector<std::string>{"val_loss", "val_ppl"}));
  models::Gpt g(io::read_checkpoint_config(teacher()));
  io::load_checkpoint(teacher(), g, nullptr, nullptr);
  const train::EvalResult t = train::evaluate(g, train::open_prepared_token_files(dir_.string(), 40).val, 16, 8, 0);
  EXPECT_LT(r.val_perplexity, 1.25 * t.perplexity) << "teacher " << t.perplexity;
  EXPECT_GT(r.val_perplexity, t.perplexity * 0.8);
  const io::SafeTensors ck = io::SafeTensors::open(r.checkpoint);
  for (const char* p : {"h.0.attn.c_attn", "h.1.mlp.c_proj"}) {
    const Tensor w = ck.get(std::string(p) + ".weight"), m = ck.get(std::string("task.nm.mask.") + p);
    std::vector<float> masked(w.f32(), w.f32() + w.numel());
    for (size_t i = 0; i < masked.size(); ++i) masked[i] *= m.f32()[i];
    EXPECT_TRUE(compress::satisfies_nm(masked.data(), w.dim(0), w.dim(1), NmPattern{2, 4})) << p;
  }
  const train::TrainResult whole = run(nxm_lm("a", 14));
  train::TrainOptions first;
  first.stop_after = 5;  // inside ADMM's phase
  ASSERT_EQ(run(nxm_lm("b", 14), first).steps_done, 5);
  train::TrainOptions rest;
  rest.resume = true;
  const train::TrainResult resumed = run(nxm_lm("b", 14), rest);
  EXPECT_EQ(checkpoint_tensors(whole.checkpoint), checkpoint_tensors(resumed.checkpoint));
  EXPECT_EQ(whole.validation.values, resumed.validation.values);
}

TEST_F(NmLmTrain, CompressReportsTheStudentBesideTheTeacherAndBadKeysAreErrors) {
  const std::string cfg = file("lm.json");
  std::ofstream(cfg) << nxm_lm("cli", 12);
  const std::string out = gannet::testing::gannet_output("compress --config " + cfg + " --no-progress --threads 1 2>&1");
  EXPECT_TRUE(has(out, "validation perplexity on")) << out;
  EXPECT_TRUE(has(out, "student (simulated, its products as trained)")) << out;
  EXPECT_TRUE(has(out, "a packed N:M GPT file is not written yet")) << out;
  auto error_of = [&](const std::string& text) {
    return message_of([&] { train::parse_train_config(text, "c.json"); });
  };
  EXPECT_TRUE(has(error_of(nxm_lm("e", 12, R"(, "distillation": {"hidden": 1})")), "distils the logits only"));
  EXPECT_TRUE(has(error_of(nxm_lm("e", 12, R"(, "model": {"n_layer": 2})")), "remove the model block"));
  EXPECT_TRUE(has(error_of(nxm_lm("e", 12, R"(, "activation_checkpointing": {"enabled": true})")),
                  "activation_checkpointing"));
}

// W4A4 by QAT alone (no pruning): compress packs the student into a GPT file whose perplexity on
// the engine's integer kernels is the simulated one (the forward the student trained through).
TEST_F(NmLmTrain, CompressPacksADenseStudentThatRunsOnTheEngine) {
  const std::string cfg = file("w4a4.json");
  std::string text = nxm_lm("w4a4", 6);
  const size_t a = text.find(R"("sparse_pruning")"), b = text.find(R"("weight_quantization")");
  text.erase(a, b - a);
  auto replace = [&](const std::string& from, const std::string& to) { text.replace(text.find(from), from.size(), to); };
  replace(R"("start_bits": 8, "target_bits": 8)", R"("start_bits": 4, "target_bits": 4)");
  replace(R"("bits": 8)", R"("bits": 4)");
  std::ofstream(cfg) << text;
  const std::string out = gannet::testing::gannet_output("compress --config " + cfg + " --no-progress --threads 1 2>&1");
  const std::string packed = file("w4a4") + "/model.quantized.safetensors";
  ASSERT_TRUE(has(out, "packed: " + packed)) << out;
  const io::GptWeights q = io::read_gpt_weights(packed);
  EXPECT_EQ(q.activation("h.1.mlp.c_proj.weight"), (io::ActivationQuant{true, 0.f, 4, false}));
  EXPECT_EQ(q.quantized.at("h.0.attn.c_attn.weight").bits, 4);
  auto number_after = [&](const std::string& key) { return std::stod(out.substr(out.find(key) + key.size())); };
  const double simulated = number_after("its products as trained) "), engine = number_after("perplexity on the engine ");
  EXPECT_NEAR(engine, simulated, 2e-3 * simulated) << out;
}

}  // namespace
