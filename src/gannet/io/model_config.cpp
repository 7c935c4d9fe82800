#include "gannet/io/model_config.h"

namespace gannet::io {

nn::MoeConfig read_moe_config(const JsonReader& r) {
  nn::MoeConfig m;
  if (r.has("num_experts")) {
    // One number for every MoE layer, or a list (one per MoE layer).
    std::vector<int64_t> list;
    try {
      list = r.get_int_list("num_experts", {}, 1);
    } catch (const Error&) {
      list = {r.get_int<int64_t>("num_experts", 0, 1)};
    }
    m.num_experts = list;
  }
  m.layers = r.get_int_list("layers", m.layers, 0);
  m.expert_interval = r.get_int("expert_interval", m.expert_interval, 1);
  m.k = r.get_int("k", m.k, 1);
  m.capacity_factor = r.get_double("capacity_factor", m.capacity_factor, NumberRange::above(0));
  m.eval_capacity_factor = r.get_double("eval_capacity_factor", m.eval_capacity_factor, NumberRange::above(0));
  m.min_capacity = r.get_int("min_capacity", m.min_capacity, 0);
  m.drop_tokens = r.get_bool("drop_tokens", m.drop_tokens);
  m.use_rts = r.get_bool("use_rts", m.use_rts);
  m.noisy_gate_policy = r.get_string("noisy_gate_policy", m.noisy_gate_policy);
  m.use_residual = r.get_bool("use_residual", m.use_residual);
  m.router = r.get_string("router", m.router);
  m.moe_loss_coeff = r.get_double("moe_loss_coeff", m.moe_loss_coeff, NumberRange::at_least(0));
  m.router_z_loss_coeff = r.get_double("router_z_loss_coeff", m.router_z_loss_coeff, NumberRange::at_least(0));
  m.ep_size = r.get_int("ep_size", m.ep_size, 1);
  GANNET_CHECK(m.enabled(), r.context(), ": num_experts is required");
  return m;
}

nlohmann::json moe_config_to_json(const nn::MoeConfig& m) {
  nlohmann::json j{{"num_experts", m.num_experts},
                   {"expert_interval", m.expert_interval},
                   {"k", m.k},
                   {"capacity_factor", m.capacity_factor},
                   {"eval_capacity_factor", m.eval_capacity_factor},
                   {"min_capacity", m.min_capacity},
                   {"drop_tokens", m.drop_tokens},
                   {"use_rts", m.use_rts},
                   {"noisy_gate_policy", m.noisy_gate_policy},
                   {"use_residual", m.use_residual},
                   {"router", m.router},
                   {"moe_loss_coeff", m.moe_loss_coeff},
                   {"router_z_loss_coeff", m.router_z_loss_coeff},
                   {"ep_size", m.ep_size}};
  if (!m.layers.empty()) j["layers"] = m.layers;
  return j;
}

models::GptConfig read_gpt_config(const JsonReader& r) {
  models::GptConfig c;
  c.vocab_size = r.get_int("vocab_size", c.vocab_size);
  c.n_ctx = r.get_int("n_ctx", c.n_ctx);
  c.n_layer = r.get_int("n_layer", c.n_layer);
  c.n_head = r.get_int("n_head", c.n_head);
  c.n_embd = r.get_int("n_embd", c.n_embd);
  c.layernorm_eps = r.get_float("layernorm_eps", c.layernorm_eps, NumberRange::above(0));
  if (r.has("moe")) c.moe = read_moe_config(r.child("moe"));
  try {
    c.validate();
  } catch (const Error& e) {
    fail(str(r.context(), ": ", e.what()));
  }
  return c;
}

nlohmann::json gpt_config_to_json(const models::GptConfig& c) {
  nlohmann::json j{{"vocab_size", c.vocab_size}, {"n_ctx", c.n_ctx},   {"n_layer", c.n_layer},
                   {"n_head", c.n_head},         {"n_embd", c.n_embd}, {"layernorm_eps", c.layernorm_eps}};
  if (c.moe.enabled()) j["moe"] = moe_config_to_json(c.moe);
  return j;
}

}  // namespace gannet::io
