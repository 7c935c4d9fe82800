#include "gannet/train/train_config.h"

#include "gannet/core/atomic_file.h"
#include "gannet/io/checkpoint.h"
#include "gannet/io/encoder_checkpoint.h"
#include "gannet/io/graphsage_checkpoint.h"
#include "gannet/io/json_config.h"
#include "gannet/io/model_config.h"
#include "gannet/io/vlmoe_checkpoint.h"
#include "gannet/kernels/gemm.h"

namespace gannet::train {

namespace {
// Sequences per micro-batch and micro-batches per step: far above any CPU run, low enough that
// batch x seq_len x vocab products stay far from int64's end.
constexpr int64_t kMaxBatch = 1 << 20;
// Task "graph": the model block and the graph block.
void read_graph_task(const io::JsonReader& r, TrainConfig& c) {
  c.graph_model = io::read_graphsage_config(r.child("model"), c.graph_model, false);
  const io::JsonReader g = r.child("graph");
  const std::vector<int64_t> fanouts = g.get_int_list("fanouts", {c.fanouts.begin(), c.fanouts.end()}, -1, 1 << 16);
  for (int64_t f : fanouts)
    GANNET_CHECK(f != 0, g.context(), ".fanouts: 0 neighbours per hop; use at least 1 (or -1: every neighbour)");
  c.fanouts.assign(fanouts.begin(), fanouts.end());
  if (c.graph_model.is_sage())
    GANNET_CHECK((int64_t)c.fanouts.size() == c.graph_model.layers, g.context(), ".fanouts: ", c.fanouts.size(),
                 " hops for a model of ", c.graph_model.layers, " layers (one per layer)");
  c.graph_features = g.get_string("features", c.graph_features);
  GANNET_CHECK(!c.graph_features.empty(), g.context(), ".features: empty (\"raw\" or a BiFeat file)");
  c.data_dir = "data/debian-graph";
}

// Task "vlmoe": the model block and the vlmoe block.
void read_vlmoe_task(const io::JsonReader& r, TrainConfig& c) {
  const io::JsonReader model = r.child("model");
  c.vlmoe = io::read_vlmoe_config(model, c.vlmoe, false);
  try {
    c.vlmoe.validate();  // with the default vocab_size: the tokenizer's is known once the data is read
  } catch (const Error& e) {
    fail(str(model.context(), ": ", e.what()));
  }
  const io::JsonReader v = r.child("vlmoe");
  c.vlmoe_eval_split = v.get_string("eval_split", c.vlmoe_eval_split);
  const std::string& split = c.vlmoe_eval_split;
  GANNET_CHECK(split.empty() || split == "test_chars" || split == "test_blocks" || split == "test", v.context(),
               ".eval_split: '", split, "' is not a held-out split (glyphs: test_chars or test_blocks; ",
               "fashion-mnist: test)");
  c.vlmoe_itm_weight = v.get_double("itm_weight", c.vlmoe_itm_weight, NumberRange::at_least(0));
  c.vlmoe_mlm_weight = v.get_double("mlm_weight", c.vlmoe_mlm_weight, NumberRange::at_least(0));
  c.vlmoe_mim_weight = v.get_double("mim_weight", c.vlmoe_mim_weight, NumberRange::at_least(0));
  const NumberRange open_unit{0, 1, true, true};  // (0, 1)
  c.vlmoe_mlm_mask_ratio = v.get_float("mlm_mask_ratio", c.vlmoe_mlm_mask_ratio, open_unit);
  c.vlmoe_mim_mask_ratio = v.get_float("mim_mask_ratio", c.vlmoe_mim_mask_ratio, open_unit);
  for (const auto& [key, ratio] : {std::pair{"mlm_mask_ratio", c.vlmoe_mlm_mask_ratio},
                                   std::pair{"mim_mask_ratio", c.vlmoe_mim_mask_ratio}})
    GANNET_CHECK(ratio > 0.f && ratio < 1.f, v.context(), ".", key, ": ", ratio, " is not in (0, 1) as a float");
  c.data_dir = "data/glyphs";
}

// Task "vlmoe_classify" (train/vlmoe_classify_task.h): the model from init.checkpoint (a "vlmoe"
// checkpoint; a model block must then agree with it) or the model block, and vlmoe_classify.eval_split.
void read_vlmoe_classify_task(const io::JsonReader& r, TrainConfig& c) {
  c.init_checkpoint = r.child("init").get_string("checkpoint", "");
  const io::JsonReader model = r.child("model");
  if (!c.init_checkpoint.empty()) {
    c.vlmoe = io::read_vlmoe_checkpoint_config(c.init_checkpoint);
    const nlohmann::json stored = io::vlmoe_config_to_json(c.vlmoe);
    const nlohmann::json asked = io::vlmoe_config_to_json(io::read_vlmoe_config(model, c.vlmoe, false));
    for (const auto& [key, value] : stored.items())
      GANNET_CHECK(asked.at(key) == value, model.context(), ".", key, ": ", asked.at(key).dump(),
                   " conflicts with init.checkpoint ", c.init_checkpoint, " (", value.dump(),
                   "); leave the model block out to take the checkpoint's");
  } else {
    c.vlmoe = io::read_vlmoe_config(model, c.vlmoe, false);
    c.vlmoe.vocab_size = 5;  // the text tower is unused: a vocabulary of the special tokens only
    try {
      c.vlmoe.validate();
    } catch (const Error& e) {
      fail(str(model.context(), ": ", e.what()));
    }
  }
  // Held in vlmoe_eval_split ("": the data's own, test_chars or test), checked against the data's
  // format when the task reads it.
  c.vlmoe_eval_split = r.child("vlmoe_classify").get_string("eval_split", "");
  c.data_dir = "data/glyphs";
}

// "task" and the model block it reads, with the task's own keys.
void read_task(const io::JsonReader& r, TrainConfig& c) {
  c.task = r.get_string("task", c.task);
  GANNET_CHECK(c.task == "lm" || c.task == "mlm" || c.task == "classify" || c.task == "xtc" || c.task == "nxm" ||
                   c.task == "nxm_lm" || c.task == "graph" || c.task == "vlmoe" || c.task == "vlmoe_classify",
               r.context(), ".task: '", c.task,
               "' is not a task (lm, mlm, classify, xtc, nxm, nxm_lm, graph, vlmoe or vlmoe_classify)");
  if (c.task == "graph") {
    read_graph_task(r, c);
    return;
  }
  if (c.task == "vlmoe") {
    read_vlmoe_task(r, c);
    return;
  }
  if (c.task == "vlmoe_classify") {
    read_vlmoe_classify_task(r, c);
    return;
  }
  if (c.task == "lm") {
    c.model = io::read_gpt_config(r.child("model"));
    return;
  }
  if (c.task == "nxm_lm") {
    GANNET_CHECK(!r.has("model"), r.context(), ": task \"nxm_lm\" takes the model's shape from teacher.checkpoint; ",
                 "remove the model block");
    c.teacher_checkpoint = r.child("teacher").get_string("checkpoint", "");
    GANNET_CHECK(!c.teacher_checkpoint.empty(), r.context(), ": task \"nxm_lm\" needs teacher.checkpoint (a GPT)");
    c.model = io::read_checkpoint_config(c.teacher_checkpoint);
    GANNET_CHECK(!c.model.moe.enabled(), c.teacher_checkpoint, ": an MoE GPT; task \"nxm_lm\" compresses dense GPTs");
    c.init_checkpoint = r.child("init").get_string("checkpoint", "");
    return;
  }
  if (c.task == "xtc" || c.task == "nxm") {
    GANNET_CHECK(!r.has("model"), r.context(), ": task \"", c.task, "\" takes the model's shape from teacher.checkpoint",
                 " (and compression_training.layer_reduction)", "; remove the model block");
    c.teacher_checkpoint = r.child("teacher").get_string("checkpoint", "");
    GANNET_CHECK(!c.teacher_checkpoint.empty(), r.context(), ": task \"", c.task, "\" needs teacher.checkpoint");
    c.encoder = io::read_encoder_checkpoint_config(c.teacher_checkpoint);
    c.init_checkpoint = r.child("init").get_string("checkpoint", "");
    return;
  }
  models::EncoderConfig defaults;
  defaults.mlm_head = c.task == "mlm";
  defaults.num_classes = c.task == "mlm" ? 0 : 2;  // classify: replaced by the data set's
  const io::JsonReader model = r.child("model");
  GANNET_CHECK(!model.has("num_classes") && !model.has("mlm_head"), model.context(),
               ": num_classes and mlm_head follow from the task and its data; remove them");
  c.encoder = io::read_encoder_config(model, defaults);
  if (c.task == "mlm") c.mask_prob = r.child("mlm").get_float("mask_prob", c.mask_prob, NumberRange::left_open(0, 1));
  if (c.task == "classify") c.init_checkpoint = r.child("init").get_string("checkpoint", "");
}

}  // namespace

TrainConfig read_train_config(const std::string& path) { return parse_train_config(read_file(path), path); }

TrainConfig parse_train_config(const std::string& text, const std::string& name) {
  TrainConfig c;
  c.text = text;
  const nlohmann::json root = io::parse_json_text(text, name);
  io::JsonReader r(root, name);
  read_task(r, c);
  const bool gpt = c.task == "lm" || c.task == "nxm_lm";
  const bool sequences = c.task != "graph" && c.task != "vlmoe" && c.task != "vlmoe_classify";  // token windows
  const int64_t n_ctx = gpt ? c.model.n_ctx : c.encoder.n_ctx;

  io::JsonReader data = r.child("data");
  c.data_dir = data.get_string("dir", c.data_dir);
  if (sequences) {
    c.seq_len = data.get_int("seq_len", n_ctx);
    GANNET_CHECK(c.seq_len > 0 && c.seq_len <= n_ctx, name, ": data.seq_len ", c.seq_len,
                 " must be in [1, model.n_ctx = ", n_ctx, "]");
  }
  if (c.task == "classify" || c.task == "xtc" || c.task == "nxm") {
    c.classify_set = data.get_string("task", "");
    GANNET_CHECK(!c.classify_set.empty(), name, ": task \"", c.task, "\" needs data.task (e.g. \"brown-genre\")");
  }

  c.micro_batch = r.get_int("train_micro_batch_size_per_gpu", c.micro_batch, 1, kMaxBatch);
  c.grad_accum = r.get_int("gradient_accumulation_steps", c.grad_accum, 1, kMaxBatch);
  if (r.has("train_batch_size")) {
    int64_t total = r.get_int<int64_t>("train_batch_size", 0, 1);
    GANNET_CHECK(total == c.micro_batch * c.grad_accum, name, ": train_batch_size ", total,
                 " != train_micro_batch_size_per_gpu ", c.micro_batch, " x gradient_accumulation_steps ",
                 c.grad_accum);
  }
  c.steps = r.get_int("train_steps", c.steps, 1);
  if (c.task == "xtc") c.xtc = compress::read_xtc_config(root, r, c.steps);
  if (c.task == "nxm" || c.task == "nxm_lm") c.nxm = compress::read_nm_config(root, r, c.steps, c.task == "nxm_lm");
  c.grad_clip = r.get_float("gradient_clipping", c.grad_clip, NumberRange::at_least(0));  // 0: off

  io::JsonReader opt = r.child("optimizer");
  std::string opt_type = opt.get_string("type", "AdamW");
  GANNET_CHECK(opt_type == "AdamW", name, ": optimizer.type '", opt_type, "' is not supported (only AdamW)");
  io::JsonReader op = opt.child("params");
  c.adamw.lr = op.get_float("lr", c.adamw.lr, NumberRange::above(0));
  // [0, 1) in float too: 0.99999999 rounds to 1.
  std::vector<double> betas = op.get_double_list("betas", {c.adamw.beta1, c.adamw.beta2}, NumberRange::half_open(0, 1));
  GANNET_CHECK(betas.size() == 2, op.context(), ".betas: expected two numbers, got ", betas.size());
  c.adamw.beta1 = (float)betas[0];
  c.adamw.beta2 = (float)betas[1];
  GANNET_CHECK(c.adamw.beta1 < 1.f && c.adamw.beta2 < 1.f, op.context(), ".betas: must be in [0, 1) as floats");
  c.adamw.eps = op.get_float("eps", c.adamw.eps, NumberRange::above(0));
  c.adamw.weight_decay = op.get_float("weight_decay", c.adamw.weight_decay, NumberRange::at_least(0));

  io::JsonReader sch = r.child("scheduler");
  std::string sch_type = sch.get_string("type", "WarmupCosineLR");
  GANNET_CHECK(sch_type == "WarmupCosineLR", name, ": scheduler.type '", sch_type,
               "' is not supported (only WarmupCosineLR)");
  io::JsonReader sp = sch.child("params");
  c.schedule.max_lr = c.adamw.lr;
  c.schedule.warmup_steps = sp.get_int("warmup_num_steps", std::min<int64_t>(100, c.steps / 10), 0);
  c.schedule.total_steps = sp.get_int("total_num_steps", c.steps, 0);
  c.schedule.min_lr = c.adamw.lr * sp.get_float("cos_min_ratio", 0.1f, NumberRange::closed(0, 1));
  GANNET_CHECK(c.schedule.total_steps >= c.schedule.warmup_steps, sp.context(), ": warmup_num_steps ",
               c.schedule.warmup_steps, " is above total_num_steps ", c.schedule.total_steps);

  io::JsonReader ev = r.child("eval");
  c.eval_interval = ev.get_int("interval", c.eval_interval, 0);  // 0: only at the end
  c.eval_batches = ev.get_int("batches", c.eval_batches, 0);  // 0: the whole file
  io::JsonReader ck = r.child("checkpoint");
  c.out_dir = ck.get_string("dir", c.out_dir);
  c.checkpoint_interval = ck.get_int("interval", c.checkpoint_interval, 0);  // 0: only at the end
  if (ck.has("sharded")) c.checkpoint_sharded = ck.get_bool("sharded", false);
  c.seed = r.get_uint64("seed", c.seed);
  c.threads = r.get_int("threads", c.threads, 0, kernels::kMaxThreads);  // 0: all cores
  io::JsonReader par = r.child("parallel");
  c.tensor_parallel = par.get_int("tensor", c.tensor_parallel, 1);
  c.expert_parallel = par.get_int("expert", c.expert_parallel, 1);
  c.duplicate_token_dropping = par.get_bool("duplicate_token_dropping", c.duplicate_token_dropping);
  GANNET_CHECK(!c.duplicate_token_dropping || (c.tensor_parallel > 1 && c.model.moe.enabled()), name,
               ": parallel.duplicate_token_dropping needs parallel.tensor > 1 and a model with a moe block");
  c.vocab_parallel = par.get_bool("vocab_parallel", c.vocab_parallel);
  io::JsonReader zero = r.child("zero_optimization");
  c.zero_stage = zero.get_int("stage", c.zero_stage, 0, 2);
  // 0: whole buckets.
  c.reduce_bucket_size = zero.get_int("reduce_bucket_size", c.reduce_bucket_size, 0);
  c.allgather_bucket_size = zero.get_int("allgather_bucket_size", c.allgather_bucket_size, 0);
  io::JsonReader ac = r.child("activation_checkpointing");
  c.activation_checkpointing = ac.get_bool("enabled", c.activation_checkpointing);
  c.keep_communication = ac.get_bool("keep_communication", c.keep_communication);
  GANNET_CHECK(c.task == "lm" || !root.contains("data_efficiency"), name,
               ": data_efficiency is for the GPT (task \"lm\") only");
  io::JsonReader de = r.child("data_efficiency");  // checks that it is an object
  if (sequences)  // otherwise nothing of it applies
    c.data_efficiency = read_data_efficiency(
        de, root.contains("data_efficiency") ? root["data_efficiency"] : nlohmann::json(), c.model, c.seq_len, c.seed);
  GANNET_CHECK(c.task == "lm" || (c.tensor_parallel == 1 && c.expert_parallel == 1), name,
               ": parallel.tensor and parallel.expert are for the GPT (task \"lm\") only");
  GANNET_CHECK((c.task != "nxm_lm" && c.task != "graph" && c.task != "vlmoe" && c.task != "vlmoe_classify") ||
                   !c.activation_checkpointing,
               name,
               ": activation_checkpointing is not supported by task \"", c.task, "\"");
  r.finish();
  return c;
}

}  // namespace gannet::train
