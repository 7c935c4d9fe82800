#include "gannet/train/train_config.h"

#include "gannet/core/atomic_file.h"
#include "gannet/io/json_config.h"
#include "gannet/io/model_config.h"

namespace gannet::train {

TrainConfig read_train_config(const std::string& path) { return parse_train_config(read_file(path), path); }

TrainConfig parse_train_config(const std::string& text, const std::string& name) {
  TrainConfig c;
  c.text = text;
  const nlohmann::json root = io::parse_json_text(text, name);
  io::JsonReader r(root, name);
  c.model = io::read_gpt_config(r.child("model"));

  io::JsonReader data = r.child("data");
  c.data_dir = data.get_string("dir", c.data_dir);
  c.seq_len = data.get_int("seq_len", c.model.n_ctx);
  GANNET_CHECK(c.seq_len > 0 && c.seq_len <= c.model.n_ctx, name, ": data.seq_len ", c.seq_len,
               " must be in [1, model.n_ctx = ", c.model.n_ctx, "]");

  c.micro_batch = r.get_int("train_micro_batch_size_per_gpu", c.micro_batch);
  c.grad_accum = r.get_int("gradient_accumulation_steps", c.grad_accum);
  GANNET_CHECK(c.micro_batch > 0 && c.grad_accum > 0, name,
               ": train_micro_batch_size_per_gpu and gradient_accumulation_steps must be positive");
  if (r.has("train_batch_size")) {
    int64_t total = r.get_int("train_batch_size", 0);
    GANNET_CHECK(total == c.micro_batch * c.grad_accum, name, ": train_batch_size ", total,
                 " != train_micro_batch_size_per_gpu ", c.micro_batch, " x gradient_accumulation_steps ",
                 c.grad_accum);
  }
  c.steps = r.get_int("train_steps", c.steps);
  GANNET_CHECK(c.steps > 0, name, ": train_steps must be positive");
  c.grad_clip = (float)r.get_double("gradient_clipping", c.grad_clip);

  io::JsonReader opt = r.child("optimizer");
  std::string opt_type = opt.get_string("type", "AdamW");
  GANNET_CHECK(opt_type == "AdamW", name, ": optimizer.type '", opt_type, "' is not supported (only AdamW)");
  io::JsonReader op = opt.child("params");
  c.adamw.lr = (float)op.get_double("lr", c.adamw.lr);
  std::vector<double> betas = op.get_double_list("betas", {c.adamw.beta1, c.adamw.beta2});
  GANNET_CHECK(betas.size() == 2 && betas[0] >= 0 && betas[0] < 1 && betas[1] >= 0 && betas[1] < 1, name,
               ": optimizer.params.betas must be two numbers in [0, 1)");
  c.adamw.beta1 = (float)betas[0];
  c.adamw.beta2 = (float)betas[1];
  c.adamw.eps = (float)op.get_double("eps", c.adamw.eps);
  c.adamw.weight_decay = (float)op.get_double("weight_decay", c.adamw.weight_decay);
  GANNET_CHECK(c.adamw.lr > 0.f, name, ": optimizer.params.lr must be positive");

  io::JsonReader sch = r.child("scheduler");
  std::string sch_type = sch.get_string("type", "WarmupCosineLR");
  GANNET_CHECK(sch_type == "WarmupCosineLR", name, ": scheduler.type '", sch_type,
               "' is not supported (only WarmupCosineLR)");
  io::JsonReader sp = sch.child("params");
  c.schedule.max_lr = c.adamw.lr;
  c.schedule.warmup_steps = sp.get_int("warmup_num_steps", std::min<int64_t>(100, c.steps / 10));
  c.schedule.total_steps = sp.get_int("total_num_steps", c.steps);
  c.schedule.min_lr = c.adamw.lr * (float)sp.get_double("cos_min_ratio", 0.1);
  GANNET_CHECK(c.schedule.warmup_steps >= 0 && c.schedule.total_steps >= c.schedule.warmup_steps, name,
               ": scheduler needs 0 <= warmup_num_steps <= total_num_steps");

  io::JsonReader ev = r.child("eval");
  c.eval_interval = ev.get_int("interval", c.eval_interval);
  c.eval_batches = ev.get_int("batches", c.eval_batches);
  io::JsonReader ck = r.child("checkpoint");
  c.out_dir = ck.get_string("dir", c.out_dir);
  c.checkpoint_interval = ck.get_int("interval", c.checkpoint_interval);
  if (ck.has("sharded")) c.checkpoint_sharded = ck.get_bool("sharded", false);
  c.seed = (uint64_t)r.get_int("seed", (int64_t)c.seed);
  c.threads = (int)r.get_int("threads", c.threads);
  io::JsonReader par = r.child("parallel");
  c.tensor_parallel = (int)par.get_int("tensor", c.tensor_parallel);
  c.expert_parallel = (int)par.get_int("expert", c.expert_parallel);
  GANNET_CHECK(c.tensor_parallel >= 1 && c.expert_parallel >= 1, name,
               ": parallel.tensor and parallel.expert must be positive");
  c.duplicate_token_dropping = par.get_bool("duplicate_token_dropping", c.duplicate_token_dropping);
  GANNET_CHECK(!c.duplicate_token_dropping || (c.tensor_parallel > 1 && c.model.moe.enabled()), name,
               ": parallel.duplicate_token_dropping needs parallel.tensor > 1 and a model with a moe block");
  c.vocab_parallel = par.get_bool("vocab_parallel", c.vocab_parallel);
  io::JsonReader zero = r.child("zero_optimization");
  c.zero_stage = (int)zero.get_int("stage", c.zero_stage);
  GANNET_CHECK(c.zero_stage >= 0 && c.zero_stage <= 2, name, ": zero_optimization.stage ", c.zero_stage,
               " is not supported (0, 1 or 2)");
  c.reduce_bucket_size = zero.get_int("reduce_bucket_size", c.reduce_bucket_size);
  c.allgather_bucket_size = zero.get_int("allgather_bucket_size", c.allgather_bucket_size);
  GANNET_CHECK(c.reduce_bucket_size >= 0 && c.allgather_bucket_size >= 0, name,
               ": zero_optimization.reduce_bucket_size and allgather_bucket_size must not be negative (0: whole buckets)");
  io::JsonReader ac = r.child("activation_checkpointing");
  c.activation_checkpointing = ac.get_bool("enabled", c.activation_checkpointing);
  c.keep_communication = ac.get_bool("keep_communication", c.keep_communication);
  io::JsonReader de = r.child("data_efficiency");  // checks that it is an object
  c.data_efficiency = read_data_efficiency(de, root.contains("data_efficiency") ? root["data_efficiency"] : nlohmann::json(),
                                           c.model, c.seq_len, c.seed);
  r.finish();
  return c;
}

}  // namespace gannet::train
