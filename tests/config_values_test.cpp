// Every number in the training and quantization configs is read with the range it may take and in
// the type it is used in; null, duplicate keys and out-of-range values are one-line errors naming
// the key, never a default taken silently or a value wrapped into another.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gannet/compress/quant_config.h"
#include "gannet/train/train_config.h"
#include "test_files.h"

using namespace gannet;
using gannet::testing::message_of;

namespace {
std::string train_config(const std::string& extra, const std::string& model_extra = "") {
  return R"({"model": {"vocab_size": 40, "n_ctx": 16, "n_layer": 2, "n_head": 2, "n_embd": 16)" + model_extra +
         "}" + (extra.empty() ? "" : ", " + extra) + "}";
}

struct Case {
  std::string extra, model_extra, message;
};
}  // namespace

TEST(ConfigValues, TrainConfigNumbersOutsideTheirRangeNameTheKey) {
  const std::vector<Case> cases = {
      {R"("scheduler": {"params": {"cos_min_ratio": -0.5}})", "",
       "c.json.scheduler.params.cos_min_ratio: must be in [0, 1], got -0.5"},
      {R"("scheduler": {"params": {"cos_min_ratio": 1.5}})", "",
       "c.json.scheduler.params.cos_min_ratio: must be in [0, 1], got 1.5"},
      {R"("optimizer": {"params": {"eps": -1}})", "", "c.json.optimizer.params.eps: must be > 0, got -1"},
      {R"("optimizer": {"params": {"eps": 0}})", "", "c.json.optimizer.params.eps: must be > 0, got 0"},
      {R"("optimizer": {"params": {"weight_decay": -0.1}})", "",
       "c.json.optimizer.params.weight_decay: must be >= 0, got -0.1"},
      {R"("optimizer": {"params": {"lr": -1e-3}})", "", "c.json.optimizer.params.lr: must be > 0, got -0.001"},
      {R"("optimizer": {"params": {"lr": 1e39}})", "",
       "c.json.optimizer.params.lr: 1e+39 is out of the range of a float (> 0)"},
      {R"("optimizer": {"params": {"betas": [0.9, 1.5]}})", "",
       "c.json.optimizer.params.betas[1]: must be in [0, 1), got 1.5"},
      {R"("optimizer": {"params": {"betas": [0.9]}})", "", "c.json.optimizer.params.betas: expected two numbers, got 1"},
      {R"("gradient_clipping": -1)", "", "c.json.gradient_clipping: must be >= 0, got -1"},
      {R"("threads": -1)", "", "c.json.threads: must be in [0, 4096], got -1"},
      {R"("parallel": {"tensor": 4294967297})", "", "c.json.parallel.tensor: must be in [1, 2147483647], got 4294967297"},
      {R"("parallel": {"expert": 0})", "", "c.json.parallel.expert: must be >= 1, got 0"},
      {R"("seed": -1)", "", "c.json.seed: must be >= 0, got -1"},
      {R"("data": {"seq_len": 17})", "", "c.json: data.seq_len 17 must be in [1, model.n_ctx = 16]"},
      {R"("train_micro_batch_size_per_gpu": 0)", "", "c.json.train_micro_batch_size_per_gpu: must be in [1, 1048576], got 0"},
      {R"("train_steps": -5)", "", "c.json.train_steps: must be >= 1, got -5"},
      {R"("zero_optimization": {"stage": 3})", "", "c.json.zero_optimization.stage: must be in [0, 2], got 3"},
      {R"("zero_optimization": {"reduce_bucket_size": -1})", "",
       "c.json.zero_optimization.reduce_bucket_size: must be >= 0, got -1"},
      {R"("eval": {"interval": -1})", "", "c.json.eval.interval: must be >= 0, got -1"},
      {R"("checkpoint": {"interval": -2})", "", "c.json.checkpoint.interval: must be >= 0, got -2"},
      {R"("scheduler": {"params": {"warmup_num_steps": -1}})", "",
       "c.json.scheduler.params.warmup_num_steps: must be >= 0, got -1"},
      {"", R"(, "layernorm_eps": -1e-5)", "c.json.model.layernorm_eps: must be > 0, got -1e-05"},
      {"", R"(, "moe": {"num_experts": 2, "capacity_factor": -1})",
       "c.json.model.moe.capacity_factor: must be > 0, got -1"},
      {"", R"(, "moe": {"num_experts": 2, "moe_loss_coeff": -0.01})",
       "c.json.model.moe.moe_loss_coeff: must be >= 0, got -0.01"},
      {R"("data_efficiency": {"data_routing": {"random_ltd": {"layer_token_lr_schedule": {"total_layer_tokens": -1}}}})", "",
       "c.json.data_efficiency.data_routing.random_ltd.layer_token_lr_schedule.total_layer_tokens: must be >= 0, got -1"},
      {R"("data_efficiency": {"seed": -3})", "", "c.json.data_efficiency.seed: must be >= 0, got -3"},
  };
  for (const Case& c : cases) {
    const std::string text = train_config(c.extra, c.model_extra);
    EXPECT_EQ(message_of([&] { train::parse_train_config(text, "c.json"); }), c.message) << text;
  }
  // The defaults and values inside the ranges still read.
  const train::TrainConfig ok = train::parse_train_config(
      train_config(R"("threads": 4, "parallel": {"tensor": 1}, "scheduler": {"params": {"cos_min_ratio": 0}},
                     "optimizer": {"params": {"lr": 1e-3, "eps": 1e-8, "weight_decay": 0, "betas": [0, 0.999]}})"),
      "c.json");
  EXPECT_EQ(ok.threads, 4);
  EXPECT_EQ(ok.schedule.min_lr, 0.f);
  EXPECT_EQ(ok.adamw.eps, 1e-8f);
}

TEST(ConfigValues, NullIsAnErrorNotTheDefault) {
  EXPECT_EQ(message_of([] { train::parse_train_config(train_config(R"("train_steps": null)"), "c.json"); }),
            "c.json.train_steps: null is not a value (leave the key out for the default)");
  EXPECT_EQ(message_of([] {
              train::parse_train_config(train_config(R"("optimizer": {"params": {"eps": null}})"), "c.json");
            }),
            "c.json.optimizer.params.eps: null is not a value (leave the key out for the default)");
  EXPECT_EQ(message_of([] { train::parse_train_config(train_config(R"("scheduler": null)"), "c.json"); }),
            "c.json.scheduler: null is not a value (leave the key out for the default)");
  EXPECT_EQ(message_of([] { train::parse_train_config("null", "c.json"); }), "c.json: expected object, got null");
}

TEST(ConfigValues, DuplicateKeysAreErrors) {
  EXPECT_EQ(message_of([] { train::parse_train_config(train_config(R"("train_steps": 3, "train_steps": 4)"), "c.json"); }),
            "c.json: duplicate key 'train_steps'");
  EXPECT_EQ(message_of([] {
              train::parse_train_config(train_config(R"("optimizer": {"params": {"lr": 1e-3, "lr": 1e-2}})"), "c.json");
            }),
            "c.json: duplicate key 'optimizer.params.lr'");
}

TEST(ConfigValues, QuantizationConfigNumbersAndNulls) {
  auto scheme = [](const std::string& shared) {
    return R"({"compression_training": {"weight_quantization": {
      "shared_parameters": {"enabled": true)" + shared + R"(},
      "different_groups": {"g": {"params": {"target_bits": 8}, "modules": ["attn"]}}}}})";
  };
  EXPECT_EQ(message_of([&] { compress::scheme_from_config(scheme(R"(, "group_size": null)"), "q.json"); }),
            "compression_training.weight_quantization.shared_parameters.group_size: null is not a value (leave the "
            "key out for the default)");
  EXPECT_EQ(message_of([&] { compress::scheme_from_config(scheme(R"(, "group_size": -32)"), "q.json"); }),
            "compression_training.weight_quantization.shared_parameters.group_size: must be >= 0, got -32");
  EXPECT_EQ(message_of([&] {
              compress::scheme_from_config(scheme(R"(, "fp16_mixed_quantize": {"quantize_change_ratio": 2})"), "q.json");
            }),
            "compression_training.weight_quantization.shared_parameters.fp16_mixed_quantize.quantize_change_ratio: "
            "must be in [0, 1], got 2");
  EXPECT_EQ(message_of([&] { compress::scheme_from_config(scheme(R"(, "group_size": 32, "group_size": 64)"), "q.json"); }),
            "q.json: duplicate key 'compression_training.weight_quantization.shared_parameters.group_size'");
  EXPECT_EQ(compress::scheme_from_config(scheme(R"(, "group_size": 32)"), "q.json").rules.size(), 1u);
}
