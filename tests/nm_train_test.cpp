// NxMiFormer (task "nxm"): the config's keys and their errors; the student's schedule (one-shot,
// gradual and ADMM masks, Z and U) against what each method defines; the masked forward against
// the packed quantizer; and training through the shared loop: each method's student learns the toy
// task with 2:4 int8 products whose final weights are N:M, resumes exactly, and packs into a file
// that `gannet eval` runs with the accuracy `gannet compress` printed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>

#include "gannet/autograd/distill_ops.h"
#include "gannet/autograd/tape.h"
#include "gannet/compress/nm_mask.h"
#include "gannet/compress/nm_sparse_quantizer.h"
#include "gannet/compress/nm_student.h"
#include "gannet/compress/simulated_quant.h"
#include "gannet/infer/encoder_engine.h"
#include "gannet/io/encoder_checkpoint.h"
#include "gannet/io/nm_sparse_encoder.h"
#include "gannet/io/safetensors.h"
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

// compression_training with sparse_pruning's shared parameters `shared` and `extra` keys after it.
std::string nm_blocks(const std::string& shared, const std::string& pattern = "2:4", int bits = 8,
                      const std::string& sparse_modules = R"(["attn", "mlp"])") {
  const std::string b = std::to_string(bits);
  return R"("compression_training": {
      "sparse_pruning": {"shared_parameters": {"enabled": true, )" + shared + R"(},
        "different_groups": {"sp1": {"params": {"nm_pattern": ")" + pattern + R"("}, "modules": )" + sparse_modules +
         R"(}}},
      "weight_quantization": {"shared_parameters": {"enabled": true, "group_size": 64},
        "different_groups": {"wq1": {"params": {"start_bits": )" + b + R"(, "target_bits": )" + b + R"(},
                                     "modules": ["attn", "mlp"]}}},
      "activation_quantization": {"shared_parameters": {"enabled": true},
        "different_groups": {"aq1": {"params": {"bits": 8}, "modules": ["attn", "mlp"]}}}})";
}

const char* kAdmm = R"("method": "admm", "schedule_offset": 0, "schedule_offset_end": 12, "schedule_offset_stride": 3,
                       "admm_rho": 0.01, "admm_rho_growth": 2)";
const char* kProximalAdmm = R"("method": "admm", "schedule_offset": 0, "schedule_offset_end": 12,
                               "schedule_offset_stride": 3, "admm_rho": 0.2, "admm_rho_growth": 1.5,
                               "admm_penalty": "proximal")";

// A 1-layer encoder of width `width` with 2 heads (vocabulary 40, 16 positions, 3 classes).
std::unique_ptr<models::Encoder> tiny_encoder(int64_t width, uint64_t seed) {
  models::EncoderConfig ec;
  ec.vocab_size = 40, ec.n_ctx = 16, ec.n_layer = 1, ec.n_head = 2, ec.n_embd = width, ec.num_classes = 3;
  auto model = std::make_unique<models::Encoder>(ec);
  model->init(seed);
  return model;
}

class NmTrain : public gannet::testing::ToyTeacherTest {
 protected:
  std::string nxm(const std::string& out, int steps, const std::string& blocks) {
    return R"({"task": "nxm", "teacher": {"checkpoint": ")" + teacher() + R"("}, )" + common(out, steps) + ", " +
           blocks + "}";
  }
  // `gannet compress` of a run `name` of `steps` steps as a user runs it; checks that it reports the
  // packed accuracy `gannet eval` gives for its file. Returns compress's output and that accuracy.
  std::pair<std::string, double> compress_and_eval(const std::string& name, int steps, const std::string& blocks) {
    const std::string cfg = file(name + ".json");
    std::ofstream(cfg) << nxm(name, steps, blocks);
    const std::string out =
        gannet::testing::gannet_output("compress --config " + cfg + " --no-progress --threads 1 2>&1");
    std::smatch m;
    if (!std::regex_search(out, m, std::regex("packed N:M ([0-9.]+)%"))) {
      ADD_FAILURE() << "no packed accuracy in: " << out;
      return {out, 0.0};
    }
    const std::string val = data::classification_set_path(dir_.string(), "toy", "val");
    const std::string eval = gannet::testing::gannet_output("eval --model " + packed(name) + " --data " + val);
    EXPECT_TRUE(has(eval, "accuracy " + m[1].str() + "%")) << eval << "\ncompress said: " << out;
    return {out, std::stod(m[1].str())};
  }
  std::string packed(const std::string& name) { return file(name) + "/model.nm.safetensors"; }
};

TEST_F(NmTrain, ConfigReadsKeysAndResolvesEachProduct) {
  const train::TrainConfig c = train::parse_train_config(
      nxm("s", 20, nm_blocks(kAdmm, "1:4", 4, R"(["h.1.mlp"])")), "c.json");
  EXPECT_EQ(c.task, "nxm");
  EXPECT_EQ(c.nxm.method, compress::PruneMethod::admm);
  EXPECT_EQ(c.nxm.offset_end, 12);
  EXPECT_EQ(c.nxm.stride, 3);
  EXPECT_FLOAT_EQ(c.nxm.rho, 0.01f);
  EXPECT_EQ(c.nxm.penalty, compress::AdmmPenalty::loss);
  EXPECT_EQ(train::parse_train_config(nxm("s", 20, nm_blocks(kProximalAdmm)), "c.json").nxm.penalty,
            compress::AdmmPenalty::proximal);
  const auto forms = c.nxm.resolve(2);
  EXPECT_EQ(forms[0][2].describe(), "dense int4 g64");
  EXPECT_EQ(forms[1][1].describe(), "dense int4 g64");
  EXPECT_EQ(forms[1][2].describe(), "1:4 int4 g64");
  EXPECT_EQ(forms[1][3].describe(), "1:4 int4 g64");
}

TEST_F(NmTrain, UnsupportedSettingsAreOneLineErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {nm_blocks(R"("method": "topk")"), "method 'topk' is not supported"},
      {nm_blocks(R"("method": "admm", "schedule_offset_end": 20)"), "leaves no fine-tuning steps"},
      {nm_blocks(R"("method": "l1", "schedule_offset": 3, "schedule_offset_end": 5)"), "prunes once"},
      {nm_blocks(R"("method": "gradual", "schedule_offset": 5, "schedule_offset_end": 5)"), "must be after"},
      {nm_blocks(R"("method": "l1", "block_pattern": "4x1")"), "block_pattern"},
      {nm_blocks(R"("method": "l1", "dense_ratio": 0.5)"), "belong in the groups"},
      {nm_blocks(R"("method": "l1")", "4:4"), "nm_pattern"},
      {nm_blocks(R"("method": "admm", "admm_rho": 0)"), "admm_rho"},
      {nm_blocks(R"("method": "admm", "admm_penalty": "l2")"), "admm_penalty: unknown value \"l2\""},
      {nm_blocks(R"("method": "admm", "admm_forward": "masked")"), "admm_forward: unknown value \"masked\""},
      {nm_blocks(R"("method": "l1", "admm_rho": 0.1)"), "admm_rho is for method admm, not l1"},
      {nm_blocks(R"("method": "gradual", "schedule_offset_end": 9, "admm_forward": "dense")"),
       "admm_forward is for method admm, not gradual"},
      {nm_blocks(R"("method": "l1", "schedule_offset_stride": 5)"), "schedule_offset_stride: method l1 prunes once"},
      {nm_blocks(R"("method": "l1")", "2:4", 2), "target_bits 2 is not supported"},
      {nm_blocks(R"("method": "l1", "surprise": 1)"), "surprise"},
  };
  for (const auto& [blocks, expected] : cases) {
    const std::string e = error_of(nxm("e", 20, blocks));
    EXPECT_TRUE(has(e, expected)) << blocks << "\n-> " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  std::string ratio = nm_blocks(R"("method": "l1")");
  ratio.replace(ratio.find(R"("nm_pattern": "2:4")"), 19, R"("nm_pattern": "2:4", "dense_ratio": 0.25)");
  EXPECT_TRUE(has(error_of(nxm("e", 20, ratio)), "dense_ratio 0.25 differs from nm_pattern 2:4"));
  std::string uncovered = nm_blocks(R"("method": "l1")");
  uncovered.replace(uncovered.find(R"(["attn", "mlp"]}}},
      "activation)"), 15, R"(["attn"])");
  const train::TrainConfig c = train::parse_train_config(nxm("e", 20, uncovered), "c.json");
  EXPECT_TRUE(has(message_of([&] { c.nxm.resolve(2); }), "h.0.mlp.c_fc.weight is named by 0 groups"));
}

// The student's state after each method's events, against the definitions.
TEST_F(NmTrain, ScheduleMasksAndAdmmVariablesFollowTheirDefinitions) {
  const std::unique_ptr<models::Encoder> owned = tiny_encoder(32, 7);
  models::Encoder& model = *owned;
  const Tensor& w = model.trunk().block(0).mlp.c_fc.weight.value();  // [128, 32]
  auto config = [&](const std::string& shared) {
    return train::parse_train_config(nxm("s", 40, nm_blocks(shared)), "c.json").nxm;
  };
  auto kept_per_run = [&](const Tensor& mask) {  // the most any run of 4 keeps
    int most = 0;
    for (int64_t i = 0; i < mask.numel(); i += 4) {
      int k = 0;
      for (int j = 0; j < 4; ++j) k += mask.f32()[i + j] != 0.f;
      most = std::max(most, k);
    }
    return most;
  };
  auto state = [](const compress::NmStudent& s, const std::string& name) {
    for (const auto& [n, t] : s.state_tensors())
      if (n == name) return t;
    ADD_FAILURE() << "no state " << name;
    return Tensor();
  };

  const compress::NmConfig l1 = config(R"("method": "l1", "schedule_offset": 2)");
  compress::NmStudent one_shot(l1, model.trunk());
  one_shot.prepare(1);
  EXPECT_FALSE(one_shot.masked(0, 2));
  one_shot.prepare(2);
  EXPECT_TRUE(one_shot.masked(0, 2));
  const std::vector<uint8_t> expected = compress::nm_mask(w.f32(), 128, 32, NmPattern{2, 4});
  const Tensor mask = state(one_shot, "nm.mask.h.0.mlp.c_fc");
  for (int64_t i = 0; i < w.numel(); ++i) ASSERT_EQ(mask.f32()[i], (float)expected[(size_t)i]) << i;

  const compress::NmConfig gradual =
      config(R"("method": "gradual", "schedule_offset": 0, "schedule_offset_end": 20, "schedule_offset_stride": 5)");
  compress::NmStudent g(gradual, model.trunk());
  std::vector<int> kept;
  for (int s = 0; s <= 21; ++s) {
    g.prepare(s);
    if (s % 5 == 0 || s == 21) kept.push_back(kept_per_run(state(g, "nm.mask.h.0.attn.c_attn")));
  }
  // Cubic: pruned share 0, 0.58, 0.875, 0.98, 1 of the 2 prunable entries -> kept 4, 3, 2, 2, 2.
  EXPECT_EQ(kept, (std::vector<int>{4, 3, 2, 2, 2, 2}));

  const compress::NmConfig admm = config(kAdmm);
  compress::NmStudent a(admm, model.trunk());
  a.prepare(0);
  const Tensor z = state(a, "admm.z.h.0.mlp.c_fc"), u = state(a, "admm.u.h.0.mlp.c_fc");
  std::vector<float> proj(w.f32(), w.f32() + w.numel());
  compress::nm_project(proj.data(), 128, 32, NmPattern{2, 4});
  for (int64_t i = 0; i < w.numel(); ++i) {
    ASSERT_EQ(z.f32()[i], proj[(size_t)i]);
    ASSERT_EQ(u.f32()[i], w.f32()[i] - proj[(size_t)i]);  // U = 0 + W - Z
  }
  EXPECT_FLOAT_EQ(a.rho_at(0), 0.01f);
  EXPECT_FLOAT_EQ(a.rho_at(3), 0.02f);
  EXPECT_FLOAT_EQ(a.rho_at(11), 0.08f);
  // rho / 2 ||W - Z + U||^2 with W unchanged: W - Z + U = 2 (W - proj W).
  double expect_penalty = 0;
  for (int64_t i = 0; i < w.numel(); ++i) expect_penalty += 4.0 * std::pow(w.f32()[i] - proj[(size_t)i], 2);
  double penalty = 0;
  {
    autograd::NoGrad ng;
    penalty = a.penalty().value().f32()[0];
  }
  EXPECT_GT(penalty, 0.005 * expect_penalty * 0.999);  // the sum over all products is at least c_fc's
  EXPECT_FALSE(a.masked(0, 2));
  for (int s = 1; s <= 12; ++s) a.prepare(s);
  EXPECT_TRUE(a.masked(0, 2));
  EXPECT_FALSE(a.penalty().defined());
  EXPECT_EQ(kept_per_run(state(a, "nm.mask.h.0.mlp.c_fc")), 2);
}

// ADMM's proximal W-step: each prepared step pulls W toward Z - U by rho / (1 + rho), once.
TEST_F(NmTrain, ProximalAdmmPullsTheWeightsOncePerStep) {
  const std::unique_ptr<models::Encoder> owned = tiny_encoder(32, 5);
  models::Encoder& model = *owned;
  const Tensor& w = model.trunk().block(0).mlp.c_proj.weight.value();  // [32, 128]
  const std::vector<float> w0(w.f32(), w.f32() + w.numel());
  const compress::NmConfig c = train::parse_train_config(nxm("p", 40, nm_blocks(kProximalAdmm)), "c.json").nxm;
  compress::NmStudent s(c, model.trunk());
  const double start = s.distance_from_pattern();
  s.prepare(0);  // Z = proj(W0), U = W0 - Z: the target Z - U = 2 Z - W0
  std::vector<float> z(w0);
  compress::nm_project(z.data(), 32, 128, NmPattern{2, 4});
  const double rho = 0.2;
  for (size_t i = 0; i < w0.size(); ++i) {
    const double expect = (w0[i] + rho * (2.0 * z[i] - w0[i])) / (1.0 + rho);
    ASSERT_NEAR(w.f32()[i], expect, 1e-6 * (1.0 + std::fabs(expect))) << i;
  }
  EXPECT_FALSE(s.penalty().defined());  // the loss carries no term
  EXPECT_GT(s.penalty_value(), 0.0);
  const std::vector<float> once(w.f32(), w.f32() + w.numel());
  s.prepare(0);  // the same step again: nothing moves
  EXPECT_EQ(std::memcmp(once.data(), w.f32(), once.size() * sizeof(float)), 0);
  for (int step = 1; step < 12; ++step) s.prepare(step);
  // rho 0.2 x 1.5^k over 12 steps (4 updates): well on the way to the N:M set.
  EXPECT_LT(s.distance_from_pattern(), 0.4 * start) << start;
}

// A masked product's forward weight is, bitwise, what the packed quantizer stores for W * mask.
TEST_F(NmTrain, MaskedForwardIsThePackedQuantizersNumbers) {
  const std::unique_ptr<models::Encoder> owned = tiny_encoder(64, 3);
  models::Encoder& model = *owned;
  const compress::NmConfig c =
      train::parse_train_config(nxm("s", 10, nm_blocks(R"("method": "l1")", "2:4", 4)), "c.json").nxm;
  compress::NmStudent s(c, model.trunk());
  s.prepare(0);
  const autograd::Var& w = model.trunk().block(0).mlp.c_proj.weight;  // [64, 256]
  autograd::NoGrad ng;
  const Tensor forward = s.weight(0, 3, w).value();
  const io::NmSparseTensor packed =
      compress::quantize_nm_sparse(w.value().f32(), 64, 256, {NmPattern{2, 4}, 4, 64});
  const Tensor dense = packed.dequantize();
  EXPECT_EQ(std::memcmp(forward.raw(), dense.raw(), dense.nbytes()), 0);
}

// With admm_forward "projected", ADMM's phase runs the packed quantizer's numbers for W itself (its
// N:M projection, quantized), and every entry of W, kept or not, gets the output's gradient.
TEST_F(NmTrain, ProjectedAdmmForwardIsThePackedNumbersWithDenseGradients) {
  const std::unique_ptr<models::Encoder> owned = tiny_encoder(64, 4);
  models::Encoder& model = *owned;
  const std::string shared = std::string(kProximalAdmm) + R"(, "admm_forward": "projected")";
  const compress::NmConfig c = train::parse_train_config(nxm("s", 20, nm_blocks(shared, "2:4", 4)), "c.json").nxm;
  ASSERT_EQ(c.forward, compress::AdmmForward::projected);
  compress::NmStudent s(c, model.trunk());
  s.prepare(0);  // the proximal step moves W first: the forward projects the moved W
  const autograd::Var& w = model.trunk().block(0).mlp.c_proj.weight;  // [64, 256]
  const io::NmSparseTensor packed = compress::quantize_nm_sparse(w.value().f32(), 64, 256, {NmPattern{2, 4}, 4, 64});
  const Tensor dense = packed.dequantize();
  const autograd::Var y = s.weight(0, 3, w);
  EXPECT_EQ(std::memcmp(y.value().raw(), dense.raw(), dense.nbytes()), 0);
  int zeros = 0;
  for (int64_t i = 0; i < dense.numel(); ++i) zeros += dense.f32()[i] == 0.f;
  EXPECT_GE(zeros, dense.numel() / 2);  // the forward is sparse, though W is not
  // mse(y, y - 1) has the gradient 2 / numel at every entry of y: so must W.
  Tensor below = y.value().clone();
  for (int64_t i = 0; i < below.numel(); ++i) below.f32()[i] -= 1.f;
  autograd::tape().backward(autograd::mse(y, below));
  const Tensor& g = w.grad();
  const float expect = 2.f / (float)g.numel();
  for (int64_t i = 0; i < g.numel(); ++i) ASSERT_FLOAT_EQ(g.f32()[i], expect) << i;
  for (int step = 1; step < 12; ++step) s.prepare(step);
  EXPECT_FALSE(s.masked(0, 3));
  s.prepare(12);  // the projection: the mask of |W|, the same numbers as the projected forward
  EXPECT_TRUE(s.masked(0, 3));
  const Tensor projected = compress::quantize_nm_sparse(w.value().f32(), 64, 256, {NmPattern{2, 4}, 4, 64}).dequantize();
  autograd::NoGrad ng;
  EXPECT_EQ(std::memcmp(s.weight(0, 3, w).value().raw(), projected.raw(), projected.nbytes()), 0);
}

TEST_F(NmTrain, EveryMethodLearnsWithNmWeightsAndAdmmResumesExactly) {
  int run_index = 0;
  for (const std::string& method :
       {std::string(R"("method": "l1")"), std::string(kAdmm),
        std::string(kProximalAdmm) + R"(, "admm_forward": "projected")",
        std::string(R"("method": "gradual", "schedule_offset_end": 12, "schedule_offset_stride": 3)")}) {
    const train::TrainResult r = run(nxm("m" + std::to_string(run_index++), 30, nm_blocks(method)));
    EXPECT_GT(r.validation.values[1], 0.8) << method << ": chance is 1/3";
    const io::SafeTensors ck = io::SafeTensors::open(r.checkpoint);
    for (const char* p : {"h.0.attn.c_attn", "h.1.mlp.c_proj"}) {
      const Tensor w = ck.get(std::string(p) + ".weight"), m = ck.get(std::string("task.nm.mask.") + p);
      std::vector<float> masked(w.f32(), w.f32() + w.numel());
      for (size_t i = 0; i < masked.size(); ++i) masked[i] *= m.f32()[i];
      EXPECT_TRUE(compress::satisfies_nm(masked.data(), w.dim(0), w.dim(1), NmPattern{2, 4})) << method << " " << p;
    }
  }
  const train::TrainResult whole = run(nxm("a", 16, nm_blocks(kAdmm)));
  train::TrainOptions first;
  first.stop_after = 7;  // inside ADMM's phase, between two updates
  ASSERT_EQ(run(nxm("b", 16, nm_blocks(kAdmm)), first).steps_done, 7);
  train::TrainOptions rest;
  rest.resume = true;
  const train::TrainResult resumed = run(nxm("b", 16, nm_blocks(kAdmm)), rest);
  EXPECT_EQ(checkpoint_tensors(whole.checkpoint), checkpoint_tensors(resumed.checkpoint));
  EXPECT_EQ(whole.validation.values, resumed.validation.values);
}

// A run validated before a checkpoint at an ADMM update has prepared that step: the resumed run
// must not update Z and U (nor take the proximal step) a second time.
TEST_F(NmTrain, AdmmResumesExactlyAfterValidatingAtAnUpdate) {
  auto config = [&](const std::string& out) {
    std::string text = nxm(out, 16, nm_blocks(kProximalAdmm));
    const std::string no_eval = R"("eval": {"interval": 0, "batches": 0})";
    text.replace(text.find(no_eval), no_eval.size(), R"("eval": {"interval": 3, "batches": 2})");
    return text;
  };
  const train::TrainResult whole = run(config("pa"));
  train::TrainOptions first;
  first.stop_after = 6;  // validated at step 6, an update, then checkpointed
  ASSERT_EQ(run(config("pb"), first).steps_done, 6);
  train::TrainOptions rest;
  rest.resume = true;
  const train::TrainResult resumed = run(config("pb"), rest);
  EXPECT_EQ(checkpoint_tensors(whole.checkpoint), checkpoint_tensors(resumed.checkpoint));
  EXPECT_EQ(whole.validation.values, resumed.validation.values);
}

// `gannet compress` as a user runs it: trains, packs into an N:M file, and reports the packed
// accuracy as the engine computes it, the figure `gannet eval` gives for the file.
TEST_F(NmTrain, CompressPacksTheStudentAndRunsItOnTheEngine) {
  const auto [out, accuracy] = compress_and_eval("cli", 24, nm_blocks(kAdmm));
  EXPECT_TRUE(has(out, "packed: " + packed("cli"))) << out;
  EXPECT_TRUE(has(out, "block products")) << out;
  EXPECT_GT(accuracy, 80.0) << out;
  const io::NmSparseEncoder file_model = io::read_nm_sparse_encoder(packed("cli"));
  EXPECT_EQ(file_model.sparse.size(), 8u);
  EXPECT_EQ(file_model.sparse.at("h.1.mlp.c_fc.weight").n, 2);
  EXPECT_TRUE(has(message_of([&] { io::read_encoder_checkpoint_config(packed("cli")); }), "N:M sparse"));
}

}  // namespace

namespace {
// compression_training without pruning: int4 weights and inputs quantized as `activations` says.
std::string w4a4_blocks(const std::string& activations) {
  return R"("compression_training": {
      "weight_quantization": {"shared_parameters": {"enabled": true, "group_size": 32},
        "different_groups": {"wq1": {"params": {"start_bits": 4, "target_bits": 4}, "modules": ["*"]}}},
      "activation_quantization": )" + activations + "}";
}
const char* kA4 = R"({"shared_parameters": {"enabled": true},
        "different_groups": {"aq1": {"params": {"bits": 4}, "modules": ["*"]}}})";
}  // namespace

TEST_F(NmTrain, W4A4ConfigResolvesInt4InputsAndRefusesWhatTheKernelsDoNotTake) {
  const train::TrainConfig c = train::parse_train_config(nxm("s", 20, w4a4_blocks(kA4)), "c.json");
  for (const auto& layer : c.nxm.resolve(2))
    for (const auto& f : layer) EXPECT_EQ(f.describe(), "dense int4 g32 / a4");
  const std::string mixed = R"({"shared_parameters": {"enabled": true},
        "different_groups": {"aq1": {"params": {"bits": 8}, "modules": ["attn"]},
                             "aq2": {"params": {"bits": 4}, "modules": ["mlp"]}}})";
  const auto forms = train::parse_train_config(nxm("s", 20, w4a4_blocks(mixed)), "c.json").nxm.resolve(1);
  EXPECT_EQ(forms[0][1].describe(), "dense int4 g32");
  EXPECT_EQ(forms[0][2].describe(), "dense int4 g32 / a4");
  std::string asym = kA4;
  asym.replace(asym.find(R"("enabled": true)"), 15, R"("enabled": true, "quantization_type": "asymmetric")");
  EXPECT_EQ(train::parse_train_config(nxm("s", 20, w4a4_blocks(asym)), "c.json").nxm.resolve(1)[0][0].describe(),
            "dense int4 g32 / a4 asym");
  std::string five = kA4, asym8 = asym;
  five.replace(five.find(R"("bits": 4)"), 9, R"("bits": 5)");
  asym8.replace(asym8.find(R"("bits": 4)"), 9, R"("bits": 8)");
  EXPECT_TRUE(has(error_of(nxm("e", 20, w4a4_blocks(five))), ".params.bits 5 is not supported (8 or 4)"));
  EXPECT_TRUE(has(error_of(nxm("e", 20, w4a4_blocks(asym8))), "asymmetric activations are int4 only"));
  const std::string attn_only = R"({"shared_parameters": {"enabled": true},
        "different_groups": {"aq1": {"params": {"bits": 4}, "modules": ["attn"]}}})";
  const auto partial = train::parse_train_config(nxm("s", 20, w4a4_blocks(attn_only)), "c.json");
  EXPECT_TRUE(has(message_of([&] { partial.nxm.resolve(1); }), "h.0.mlp.c_fc.weight is named by 0 groups"));
}

// Quantization-aware W4A4 with distillation through `gannet compress`: the packed file holds int4
// weights with int4 inputs, and `gannet eval` runs it with the accuracy compress printed.
TEST_F(NmTrain, CompressW4A4PacksInt4InputsAndEvalAgrees) {
  const auto [out, accuracy] = compress_and_eval("w4a4", 24, w4a4_blocks(kA4));
  EXPECT_TRUE(has(out, "8 x dense int4 g32 / a4")) << out;
  EXPECT_GT(accuracy, 60.0) << out;
  const io::NmSparseEncoder file_model = io::read_nm_sparse_encoder(packed("w4a4"));
  EXPECT_TRUE(file_model.sparse.empty());
  ASSERT_EQ(file_model.inputs.size(), 8u);
  EXPECT_EQ(file_model.input("h.1.mlp.c_proj.weight"), (io::ActivationQuant{true, 0.f, 4, false}));
}

// Post-training W4A4 of an encoder (`gannet quantize`, round to nearest): every product dense int4
// with int4 inputs, the same logits as the engine quantizing the f32 model itself; and the options
// an encoder does not take are one-line errors.
TEST_F(NmTrain, QuantizeW4A4RoundsAnEncoderToTheEngineForm) {
  const std::string out = file("ptq.safetensors");
  const std::string said =
      gannet::testing::gannet_output("quantize -i " + teacher() + " -o " + out + " --scheme w4a4 --group 32 2>&1");
  EXPECT_TRUE(has(said, "as dense int4 g32 / a4 (round to nearest)")) << said;
  const io::NmSparseEncoder packed = io::read_nm_sparse_encoder(out);
  EXPECT_TRUE(packed.sparse.empty());
  EXPECT_EQ(packed.quantized.size(), 4u * (size_t)packed.config.n_layer);
  for (const auto& [name, q] : packed.quantized) {
    EXPECT_EQ(q.bits, 4) << name;
    EXPECT_EQ(packed.input(name), (io::ActivationQuant{true, 0.f, 4, false})) << name;
  }
  models::Encoder model(io::read_encoder_checkpoint_config(teacher()));
  io::load_encoder_checkpoint(teacher(), model, nullptr, nullptr);
  Tensor tokens = Tensor::empty({2, 8}, DType::i32), mask = Tensor::empty({2, 8}, DType::u8);
  for (int64_t i = 0; i < 16; ++i) tokens.data<int32_t>()[i] = (int32_t)(i % 7), mask.data<uint8_t>()[i] = i % 5 != 4;
  const Tensor a = infer::EncoderEngine::nm_sparse(packed).logits(tokens, mask);
  const Tensor b = infer::EncoderEngine::quantized(model, {4, 32}, io::ActivationQuant{true, 0.f, 4, false}).logits(tokens, mask);
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.f32()[i], b.f32()[i]);
  for (const std::string& bad : {std::string("--scheme w4a16"), std::string("--scheme w4a4 --lkd-steps 3"),
                                 std::string("--scheme w8a8 --asymmetric-activations")}) {
    const auto [status, text] = gannet::testing::command_status(std::string(GANNET_BINARY) + " quantize -i " + teacher() +
                                                                " -o " + file("bad") + " " + bad + " 2>&1");
    EXPECT_NE(status, 0) << bad;
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << bad << ": " << text;
  }
  EXPECT_FALSE(std::filesystem::exists(file("bad")));
}

// Composability (the INT4 paper): W4A4 with 2:4 sparsity and layer reduction trained together. The
// student keeps one of the teacher's two blocks (h.0 starts from the teacher's h.1), packs into a
// one-block file of 2:4 int4 products with int4 inputs, and evaluates as compress said.
TEST_F(NmTrain, W4A4With24AndLayerReductionPacksAOneBlockStudent) {
  std::string blocks = nm_blocks(kAdmm, "2:4", 4, R"(["attn", "mlp"])");
  blocks.replace(blocks.find(R"("bits": 8)"), 9, R"("bits": 4)");
  blocks.replace(blocks.rfind("}"), 1, R"(, "layer_reduction": {"enabled": true, "keep_number_layer": 1,
      "teacher_layer": [1]}})");
  const std::string out = compress_and_eval("composed", 24, blocks).first;
  EXPECT_TRUE(has(out, "(1 of its 2 layers: 1)")) << out;
  EXPECT_TRUE(has(out, "4 x 2:4 int4 g64 / a4")) << out;
  const io::NmSparseEncoder file_model = io::read_nm_sparse_encoder(packed("composed"));
  EXPECT_EQ(file_model.config.n_layer, 1);
  EXPECT_EQ(file_model.sparse.size(), 4u);
  EXPECT_EQ(file_model.input("h.0.mlp.c_fc.weight").bits, 4);
  // Layer reduction does not combine with the search (it measures the teacher's blocks).
  std::string searched = R"("compression_training": {
      "sparse_pruning": {"shared_parameters": {"enabled": true, "method": "l1"}, "search": {"enabled": true}},
      "weight_quantization": {"shared_parameters": {"enabled": true}},
      "activation_quantization": {"shared_parameters": {"enabled": true},
        "different_groups": {"aq1": {"params": {"bits": 8}, "modules": ["*"]}}},
      "layer_reduction": {"enabled": true, "keep_number_layer": 1, "teacher_layer": [1]}})";
  EXPECT_TRUE(has(error_of(nxm("e", 20, searched)), "layer_reduction with sparse_pruning.search is not supported"));
}
