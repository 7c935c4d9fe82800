// A random-weight GPT written straight to a gannet model file, tensor by tensor, without building
// the model in memory: `gannet init` writes GPT-2 1.5B or a 7B-class shape this way in a few
// hundred MB of memory, where models::Gpt would need the whole model (and its gradients' layout).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "gannet/core/dtype.h"
#include "gannet/models/gpt.h"

namespace gannet::io {

struct RandomGptProgress {
  int64_t tensors_done = 0, tensors_total = 0;
  uint64_t bytes_done = 0, bytes_total = 0;  // of the tensor data (the header not counted)
};

struct RandomGptSummary {
  int64_t parameters = 0;
  uint64_t file_bytes = 0;
};

// The standard deviation models::Gpt::init draws the weight `name` with (a name of
// gpt_weight_shapes(config)), or 0 for one it sets to a constant (LayerNorm weights 1, biases 0):
// wte 0.02, wpe 0.01, the residual projections (attn.c_proj, mlp.c_proj, moe.experts.c_proj)
// 0.02 / sqrt(2 n_layer), the other matrices 0.02.
float random_gpt_init_std(const std::string& name, const models::GptConfig& config);

// Writes a gannet model file of `config` (the metadata read_gpt_weights reads: format, model_type,
// model_config) holding weights drawn as models::Gpt::init draws them, in `dtype` (f32, or bf16:
// the f32 draws rounded to nearest even), streamed: the data are filled and written in pieces of
// at most 64 MiB, so memory stays small whatever the model's size. The file is written to a
// temporary beside `path`, fsynced and renamed into place (a failure leaves `path` as it was).
//
// The values follow the same distributions as Gpt::init's but not its random stream: every block
// of 65536 elements draws from its own generator, seeded by (seed, tensor, block), so the blocks
// can be drawn in parallel and the file is the same whatever the thread count. The same seed gives
// the same bytes; a model from `gannet init` differs from Gpt(config).init(seed)'s.
// `progress`, when given, is called after each piece written.
RandomGptSummary write_random_gpt(const std::string& path, const models::GptConfig& config, DType dtype,
                                  uint64_t seed,
                                  const std::function<void(const RandomGptProgress&)>& progress = {});

}  // namespace gannet::io
