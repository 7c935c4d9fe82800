#include "gannet/cli/vlmoe_embed_command.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "gannet/cli/number_options.h"
#include "gannet/cli/vlmoe_query.h"
#include "gannet/kernels/gemm.h"

namespace gannet::cli {

namespace {
struct EmbedArgs {
  VlMoeQueryArgs query;
  int threads = 0;
};

void run(const EmbedArgs& a) {
  if (a.threads > 0) kernels::set_num_threads(a.threads);
  const LoadedVlMoe m = load_vlmoe(a.query.model, a.query.tokenizer);
  const VlMoeQuery q = embed_query(m, a.query);
  nlohmann::json j;
  if (q.image) {
    j["image_of"] = code_point_str(q.glyph.code_point);
    j["name"] = q.glyph.name;
    j["split"] = q.glyph.split;
  } else {
    j["text"] = q.text;
  }
  j["dim"] = q.vector.numel();
  j["vector"] = std::vector<float>(q.vector.f32(), q.vector.f32() + q.vector.numel());
  std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}
}  // namespace

void add_embed_command(CLI::App& app) {
  auto a = std::make_shared<EmbedArgs>();
  CLI::App* cmd = app.add_subcommand(
      "embed",
      "A VL-MoE's vector for one image or text: its ITC projection, L2-normalised (the dot product of an image's "
      "and a text's vector is the cosine retrieval ranks by), printed as one line of JSON");
  add_vlmoe_query_options(cmd, a->query);
  add_threads_option(cmd, a->threads);
  cmd->callback([a]() { run(*a); });
}

}  // namespace gannet::cli
