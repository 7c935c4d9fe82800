#include "gannet/cli/init_command.h"

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>

#include "gannet/cli/number_options.h"
#include "gannet/core/error.h"
#include "gannet/io/gpt_random_init.h"

namespace gannet::cli {

namespace {
// GPT-2's published shapes (vocabulary 50257, context 1024), and a 7B-class shape in GPT-2's
// architecture (LLaMA-7B's depth and width, GPT-2's vocabulary, context 2048): 6.7B parameters.
const std::map<std::string, models::GptConfig>& presets() {
  static const std::map<std::string, models::GptConfig> p = [] {
    auto gpt2 = [](int64_t layers, int64_t heads, int64_t dim, int64_t context = 1024) {
      models::GptConfig c;
      c.vocab_size = 50257;
      c.n_ctx = context;
      c.n_layer = layers;
      c.n_head = heads;
      c.n_embd = dim;
      return c;
    };
    return std::map<std::string, models::GptConfig>{{"gpt2-124m", gpt2(12, 12, 768)},
                                                    {"gpt2-355m", gpt2(24, 16, 1024)},
                                                    {"gpt2-774m", gpt2(36, 20, 1280)},
                                                    {"gpt2-1.5b", gpt2(48, 25, 1600)},
                                                    {"gpt-7b", gpt2(32, 32, 4096, 2048)}};
  }();
  return p;
}

struct InitArgs {
  std::string preset, out, dtype = "f32";
  uint64_t seed = 1;
  int64_t experts = 0, top_k = 1;
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
  cmd->add_option("--dtype", a->dtype, "weight type stored (bf16 halves the file)")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "bf16"}));
  cmd->add_option("--experts", a->experts,
                  "make every other block (1, 3, ...) a Mixture-of-Experts block of this many experts (0: dense)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::closed(0, 4096)));
  cmd->add_option("--top-k", a->top_k, "experts each token is routed to (with --experts)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::closed(1, 4096)));
  cmd->callback([a]() {
    models::GptConfig cfg = presets().at(a->preset);
    GANNET_CHECK(a->experts > 0 || a->top_k == 1, "--top-k needs --experts");
    if (a->experts > 0) {  // dropless top-k routing, as the inference engine runs it
      cfg.moe.num_experts = {a->experts};
      cfg.moe.k = a->top_k;
      cfg.moe.drop_tokens = false;
      cfg.moe.validate(cfg.n_layer);
    }
    // The model is written tensor by tensor (io/gpt_random_init.h), never held whole: a progress
    // line on stderr every few seconds for the large presets.
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    auto last = start;
    auto progress = [&](const io::RandomGptProgress& p) {
      const auto now = Clock::now();
      if (now - last < std::chrono::seconds(5) && p.tensors_done < p.tensors_total) return;
      if (now - start < std::chrono::seconds(5)) return;  // a short write stays quiet
      last = now;
      std::fprintf(stderr, "init: %ld/%ld tensors, %.2f of %.2f GB written (%.0fs)\n", (long)p.tensors_done,
                   (long)p.tensors_total, p.bytes_done / 1e9, p.bytes_total / 1e9,
                   std::chrono::duration<double>(now - start).count());
    };
    const io::RandomGptSummary s =
        io::write_random_gpt(a->out, cfg, a->dtype == "bf16" ? DType::bf16 : DType::f32, a->seed, progress);
    const std::string moe = a->experts > 0 ? str(", ", a->experts, " experts top-", a->top_k, " in every other block") : "";
    std::printf("wrote %s: %s%s, %ld layers, d %ld, %ld heads, context %ld, vocabulary %ld, %.1fM parameters, "
                "%s, %.2f GB\n",
                a->out.c_str(), a->preset.c_str(), moe.c_str(), (long)cfg.n_layer, (long)cfg.n_embd, (long)cfg.n_head,
                (long)cfg.n_ctx, (long)cfg.vocab_size, s.parameters / 1e6, a->dtype.c_str(), s.file_bytes / 1e9);
  });
}

}  // namespace gannet::cli
