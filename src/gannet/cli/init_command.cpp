#include "gannet/cli/init_command.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <memory>

#include "gannet/cli/number_options.h"
#include "gannet/io/checkpoint.h"

namespace gannet::cli {

namespace {
// GPT-2's published shapes (vocabulary 50257, context 1024).
const std::map<std::string, models::GptConfig>& presets() {
  static const std::map<std::string, models::GptConfig> p = [] {
    auto gpt2 = [](int64_t layers, int64_t heads, int64_t dim) {
      models::GptConfig c;
      c.vocab_size = 50257;
      c.n_ctx = 1024;
      c.n_layer = layers;
      c.n_head = heads;
      c.n_embd = dim;
      return c;
    };
    return std::map<std::string, models::GptConfig>{{"gpt2-124m", gpt2(12, 12, 768)},
                                                    {"gpt2-355m", gpt2(24, 16, 1024)},
                                                    {"gpt2-774m", gpt2(36, 20, 1280)}};
  }();
  return p;
}

struct InitArgs {
  std::string preset, out;
  uint64_t seed = 1;
};
}  // namespace

void add_init_command(CLI::App& app) {
  auto a = std::make_shared<InitArgs>();
  std::vector<std::string> names;
  for (const auto& [name, cfg] : presets()) names.push_back(name);
  CLI::App* cmd = app.add_subcommand("init", "Write a random-weight model of a preset shape (for speed work)");
  cmd->add_option("--preset", a->preset, "model shape")->required()->check(CLI::IsMember(names));
  cmd->add_option("--out,-o", a->out, "model file to write (.safetensors)")->required();
  cmd->add_option("--seed", a->seed, "initialization seed")
      ->capture_default_str()
      ->check(number_in<uint64_t>(NumberRange::at_least(0)));
  cmd->callback([a]() {
    const models::GptConfig& cfg = presets().at(a->preset);
    models::Gpt model(cfg);
    model.init(a->seed);
    io::save_checkpoint(a->out, model, nullptr, io::TrainState{});
    int64_t params = 0;
    for (const auto& p : model.parameters()) params += p.var.value().numel();
    std::printf("wrote %s: %s, %ld layers, d %ld, %ld heads, context %ld, vocabulary %ld, %.1fM parameters\n",
                a->out.c_str(), a->preset.c_str(), (long)cfg.n_layer, (long)cfg.n_embd, (long)cfg.n_head,
                (long)cfg.n_ctx, (long)cfg.vocab_size, params / 1e6);
  });
}

}  // namespace gannet::cli
