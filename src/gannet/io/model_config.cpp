#include "gannet/io/model_config.h"

namespace gannet::io {

models::GptConfig read_gpt_config(const JsonReader& r) {
  models::GptConfig c;
  c.vocab_size = r.get_int("vocab_size", c.vocab_size);
  c.n_ctx = r.get_int("n_ctx", c.n_ctx);
  c.n_layer = r.get_int("n_layer", c.n_layer);
  c.n_head = r.get_int("n_head", c.n_head);
  c.n_embd = r.get_int("n_embd", c.n_embd);
  c.layernorm_eps = (float)r.get_double("layernorm_eps", c.layernorm_eps);
  try {
    c.validate();
  } catch (const Error& e) {
    fail(str(r.context(), ": ", e.what()));
  }
  return c;
}

nlohmann::json gpt_config_to_json(const models::GptConfig& c) {
  return {{"vocab_size", c.vocab_size}, {"n_ctx", c.n_ctx},   {"n_layer", c.n_layer},
          {"n_head", c.n_head},         {"n_embd", c.n_embd}, {"layernorm_eps", c.layernorm_eps}};
}

}  // namespace gannet::io
