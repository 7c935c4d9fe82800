// XTC (task "xtc"): the config's DeepSpeed keys and their errors, layer reduction's copy of the
// teacher's layers, the traced forward against the encoder's own, and distillation through the
// shared training loop: a binary student (full depth, and reduced to one layer) learns the toy
// task from its teacher, and resumes exactly.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <regex>

#include "gannet/autograd/tape.h"
#include "gannet/compress/layer_reduction.h"
#include "gannet/compress/xtc_forward.h"
#include "gannet/io/encoder_checkpoint.h"
#include "gannet/train/trainer.h"
#include "checkpoint_tensors.h"
#include "command_output.h"
#include "test_files.h"
#include "toy_classification.h"
#include "toy_teacher_fixture.h"

using namespace gannet;
using gannet::testing::checkpoint_tensors;
using gannet::testing::has;
using gannet::testing::message_of;

namespace {

// The compression_training block with `bits`, the layer_reduction block `lr` and `extra` keys.
std::string xtc_blocks(int bits, const std::string& lr = "", const std::string& extra = "") {
  const std::string b = std::to_string(bits);
  return R"("compression_training": {
      "weight_quantization": {"shared_parameters": {"enabled": true, "group_size": 0},
        "different_groups": {"wq1": {"params": {"start_bits": )" + b + R"(, "target_bits": )" + b + R"(},
                                     "modules": ["attn", "mlp", "embedding"]}}},
      "activation_quantization": {"shared_parameters": {"enabled": true},
        "different_groups": {"aq1": {"params": {"bits": 8}, "modules": ["attn", "mlp"]}}})" +
         (lr.empty() ? "" : ", \"layer_reduction\": " + lr) + "}" + extra;
}

class XtcTrain : public gannet::testing::ToyTeacherTest {
 protected:
  std::string xtc(const std::string& out, int steps, const std::string& blocks) {
    return R"({"task": "xtc", "teacher": {"checkpoint": ")" + teacher() + R"("}, )" + common(out, steps) + ", " +
           blocks + "}";
  }
};

TEST_F(XtcTrain, ConfigReadsDeepSpeedKeys) {
  const train::TrainConfig c = train::parse_train_config(
      xtc("s", 4, xtc_blocks(2, R"({"enabled": true, "keep_number_layer": 1, "module_name_prefix": "h",
          "teacher_layer": [1], "other_module_name": ["wte", "wpe", "ln_f"]})",
                              R"(, "distillation": {"hidden": 0.5, "two_stage": {"enabled": true, "first_steps": 1}})")),
      "c.json");
  EXPECT_EQ(c.xtc.weights.bits, 2);
  EXPECT_EQ(c.xtc.weights.group, 0);
  EXPECT_TRUE(c.xtc.embeddings);
  EXPECT_TRUE(c.xtc.layers.enabled);
  EXPECT_EQ(c.xtc.layers.teacher_layers, (std::vector<int64_t>{1}));
  EXPECT_EQ(c.xtc.layers.copied, (std::vector<std::string>{"wte", "wpe", "ln_f"}));
  EXPECT_EQ(c.xtc.distill.hidden, 0.5f);
  EXPECT_EQ(c.xtc.distill.logits, 1.f);
  EXPECT_TRUE(c.xtc.distill.two_stage);
  EXPECT_EQ(c.xtc.distill.first_steps, 1);
  EXPECT_EQ(c.encoder.n_layer, 2);  // the teacher's
  EXPECT_EQ(c.encoder.num_classes, 3);
  EXPECT_EQ(compress::student_layer_map(c.xtc, 2), (std::vector<int64_t>{1}));
}

TEST_F(XtcTrain, UnsupportedSettingsAreOneLineErrors) {
  auto with = [&](const std::string& from, const std::string& to, int bits = 1, const std::string& lr = "",
                  const std::string& extra = "") {
    std::string t = xtc("s", 4, xtc_blocks(bits, lr, extra));
    if (!from.empty()) t.replace(t.find(from), from.size(), to);
    return error_of(t);
  };
  EXPECT_TRUE(has(with("", "", 3), "target_bits 3 is not an XTC width")) << with("", "", 3);
  EXPECT_TRUE(has(with("\"start_bits\": 1", "\"start_bits\": 8"), "start_bits 8 differs from target_bits 1"));
  EXPECT_TRUE(has(with("\"group_size\": 0", "\"quantize_groups\": 1"), "quantize_groups"));
  EXPECT_TRUE(has(with("\"group_size\": 0", "\"group_size\": 0, \"schedule_offset\": 5"), "schedule_offset = 5"));
  EXPECT_TRUE(has(with("\"shared_parameters\": {\"enabled\": true}", "\"shared_parameters\": {\"enabled\": false}"),
                  "must be true: the packed kernels take integer activations"));
  EXPECT_TRUE(has(with("\"bits\": 8", "\"bits\": 4"), "bits 4 is not supported"));
  EXPECT_TRUE(has(with("", "", 1, R"({"enabled": true, "keep_number_layer": 1, "module_name_prefix": "bert.encoder.layer",
                                      "teacher_layer": [0]})"),
                  "module_name_prefix 'bert.encoder.layer'"));
  EXPECT_TRUE(has(with("", "", 1, R"({"enabled": true, "keep_number_layer": 2, "teacher_layer": [1, 0]})"),
                  "teacher_layer must be strictly ascending"));
  EXPECT_TRUE(has(with("", "", 1, R"({"enabled": true, "keep_number_layer": 2, "teacher_layer": [1]})"),
                  "teacher_layer lists 1 layers for keep_number_layer 2"));
  EXPECT_TRUE(has(with("", "", 1, R"({"enabled": true, "keep_number_layer": 1, "teacher_layer": [0],
                                      "other_module_name": ["bert.pooler"]})"),
                  "'bert.pooler' is not a module outside the blocks"));
  EXPECT_TRUE(has(with("", "", 1, "", R"(, "distillation": {"logit": 1})"), "unknown key 'logit'"));
  EXPECT_TRUE(has(with("", "", 1, "", R"(, "distillation": {"two_stage": {"enabled": true, "first_steps": 4}})"),
                  "first_steps 4 must leave steps to both stages"));
  EXPECT_TRUE(has(with("\"task\": \"xtc\",", "\"task\": \"xtc\", \"model\": {\"n_layer\": 1},"),
                  "remove the model block"));
  EXPECT_TRUE(has(with("\"mlp\", \"embedding\"]", "\"mlp\"]"), "modules must include \"embedding\""));
}

TEST_F(XtcTrain, LayerReductionCopiesTheChosenTeacherLayers) {
  models::EncoderConfig tc = io::read_encoder_checkpoint_config(teacher());
  models::Encoder t(tc);
  io::load_encoder_checkpoint(teacher(), t, nullptr, nullptr);
  models::Encoder s(compress::student_config(tc, {1}));
  s.init(99);
  compress::init_student_from_teacher(t, s, {1}, {"wte", "ln_f"});
  std::map<std::string, const Tensor*> tv;
  for (const auto& p : t.parameters()) tv[p.name] = &p.var.value();
  auto same = [&](const std::string& student_name, const std::string& teacher_name) {
    for (const auto& p : s.parameters())
      if (p.name == student_name)
        return std::memcmp(p.var.value().raw(), tv.at(teacher_name)->raw(), p.var.value().nbytes()) == 0;
    ADD_FAILURE() << student_name;
    return false;
  };
  EXPECT_TRUE(same("h.0.attn.c_attn.weight", "h.1.attn.c_attn.weight"));
  EXPECT_TRUE(same("h.0.mlp.c_proj.bias", "h.1.mlp.c_proj.bias"));
  EXPECT_TRUE(same("wte.weight", "wte.weight"));
  EXPECT_TRUE(same("ln_f.weight", "ln_f.weight"));
  EXPECT_FALSE(same("wpe.weight", "wpe.weight"));             // not named: the student's own
  EXPECT_FALSE(same("classifier.weight", "classifier.weight"));
  EXPECT_TRUE(has(message_of([&] { compress::init_student_from_teacher(t, s, {0, 1}, {}); }),
                  "is not the teacher's with 2 layers"));
}

TEST_F(XtcTrain, TracedForwardWithoutQuantizationIsTheEncodersOwn) {
  models::Encoder t(io::read_encoder_checkpoint_config(teacher()));
  io::load_encoder_checkpoint(teacher(), t, nullptr, nullptr);
  const data::ClassificationSet val =
      data::read_classification_set(data::classification_set_path(dir_.string(), "toy", "val"));
  autograd::NoGrad ng;
  const Tensor tokens = val.tokens.slice(0, 8), mask = val.mask.slice(0, 8);
  const compress::EncoderTrace tr = compress::traced_forward(t, nullptr, tokens, mask, {true, true});
  const Tensor own = t.logits(tokens, mask).value();
  ASSERT_EQ(tr.logits.value().numel(), own.numel());
  EXPECT_EQ(std::memcmp(tr.logits.value().raw(), own.raw(), own.nbytes()), 0);
  EXPECT_EQ(tr.hidden.size(), 3u);
  ASSERT_EQ(tr.scores.size(), 2u);
  EXPECT_EQ(tr.scores[0].value().shape(), (Shape{8 * 2 * gannet::testing::kToyWindow, gannet::testing::kToyWindow}));
}

TEST_F(XtcTrain, BinaryStudentsLearnFromTheTeacherAndResumeExactly) {
  const train::TrainResult full = run(xtc("full", 30, xtc_blocks(1)));
  ASSERT_EQ(full.validation.keys, (std::vector<std::string>{"val_loss", "val_accuracy", "val_macro_f1"}));
  EXPECT_GT(full.validation.values[1], 0.8) << "chance: 1/3";
  const train::TrainResult reduced =
      run(xtc("reduced", 30, xtc_blocks(1, R"({"enabled": true, "keep_number_layer": 1, "teacher_layer": [1]})")));
  EXPECT_GT(reduced.validation.values[1], 0.8);
  EXPECT_EQ(io::read_encoder_checkpoint_config(reduced.checkpoint).n_layer, 1);

  const std::string two = xtc_blocks(2, "", R"(, "distillation": {"two_stage": {"enabled": true, "first_steps": 3}})");
  const train::TrainResult whole = run(xtc("a", 6, two));
  train::TrainOptions first;
  first.stop_after = 4;  // into the second stage
  ASSERT_EQ(run(xtc("b", 6, two), first).steps_done, 4);
  train::TrainOptions rest;
  rest.resume = true;
  const train::TrainResult resumed = run(xtc("b", 6, two), rest);
  EXPECT_EQ(checkpoint_tensors(whole.checkpoint), checkpoint_tensors(resumed.checkpoint));
  EXPECT_EQ(whole.validation.values, resumed.validation.values);
}

// `gannet compress` as a user runs it: trains, packs, and reports the packed file's accuracy as
// the engine computes it, the same figure `gannet eval` gives for the file.
TEST_F(XtcTrain, CompressPacksTheStudentAndRunsItOnTheEngine) {
  const std::string cfg = file("xtc.json");
  std::ofstream(cfg) << xtc("cli", 20, xtc_blocks(1, R"({"enabled": true, "keep_number_layer": 1, "teacher_layer": [1]})"));
  const std::string out = gannet::testing::gannet_output("compress --config " + cfg + " --no-progress --threads 1 2>&1");
  const std::string packed = file("cli") + "/model.lowbit.safetensors";
  EXPECT_TRUE(has(out, "packed: " + packed + " (w1a8, 1 layers)")) << out;
  EXPECT_TRUE(has(out, "x smaller")) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("packed w1a8 ([0-9.]+)%"))) << out;
  const std::string val = data::classification_set_path(dir_.string(), "toy", "val");
  const std::string eval = gannet::testing::gannet_output("eval --model " + packed + " --data " + val);
  EXPECT_TRUE(has(eval, "accuracy " + m[1].str() + "%")) << eval << "\ncompress said: " << out;
  EXPECT_GT(std::stod(m[1].str()), 80.0) << out;

  std::ofstream(cfg) << R"({"task": "classify", "model": {"vocab_size": 40, "n_ctx": 16, "n_layer": 1, "n_head": 2,
      "n_embd": 32}, )" + common("cls", 2) + "}";
  EXPECT_TRUE(has(gannet::testing::gannet_output("compress --config " + cfg + " 2>&1"),
                  "gannet compress runs task \"xtc\", \"nxm\" and \"nxm_lm\" configs"));
}

}  // namespace
