#include "gannet/cli/moe_stats_vlmoe.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "gannet/cli/vlmoe_model.h"
#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"
#include "gannet/train/moe_chart.h"
#include "gannet/train/vlmoe_routing.h"

namespace gannet::cli {

namespace fs = std::filesystem;

namespace {
// moe_report's and moe_chart's "N windows of T tokens, B windows per pass", said of images or texts.
std::string reword(std::string text, const train::MoeStats& s, const std::string& what) {
  for (const auto& [from, to] : {std::pair{str(s.windows, " windows of ", s.seq_len, " tokens"), what},
                                 std::pair{std::string(" windows per pass"), std::string(" per pass")}})
    if (const size_t at = text.find(from); at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}
}  // namespace

std::string modality_chart_path(const std::string& chart, const std::string& modality) {
  fs::path p(chart);
  const std::string ext = p.has_extension() ? p.extension().string() : ".svg";
  return p.replace_extension("." + modality + ext).string();
}

void run_vlmoe_moe_stats(const VlMoeStatsRequest& q) {
  std::error_code ec;
  GANNET_CHECK(fs::is_directory(q.data, ec), "glyph data directory ", q.data,
               " does not exist (make one with `gannet data prepare --dataset glyphs`)");
  const LoadedVlMoe m = load_vlmoe(q.model);
  const data::GlyphSet set = data::load_glyph_split(q.data, q.split);
  const auto t0 = std::chrono::steady_clock::now();
  const train::VlMoeRouting r = train::analyze_vlmoe_routing(*m.model, set, m.tokenizer, q.options);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const models::VlMoeConfig& c = m.model->config();
  const train::TokenName image_name = [&c](int32_t p) { return train::image_token_name(c, p); };
  const train::TokenName text_name = [&m](int32_t id) { return m.tokenizer.token(id); };
  std::printf("moe-stats: %s on %s/%s, %ld pairs (images and texts encoded apart, %ld pairs a pass)\n",
              q.model.c_str(), q.data.c_str(), q.split.c_str(), (long)r.pairs, (long)r.batch);
  std::fputs(train::format_modality_table(r).c_str(), stdout);
  const std::string chart =
      q.chart.empty() ? fs::path(q.model).lexically_normal().replace_extension(".moe.svg").string() : q.chart;
  const std::string images = str(r.pairs, " images of ", c.image_tokens(), " tokens");
  const std::string texts = str(r.pairs, " texts of at most ", c.text_ctx, " tokens (", r.text_tokens, " in all)");
  for (const auto& [modality, stats, name, what] : {std::tuple{"image", &r.image, image_name, images},
                                                    std::tuple{"text", &r.text, text_name, texts}}) {
    std::printf("\n%s tokens (%s): ", modality, modality == std::string("image") ? "V-MoE" : "T-MoE");
    std::fputs(reword(train::format_moe_table(*stats, name), *stats, what).c_str(), stdout);
    train::MoeChartOptions co;
    co.title = q.model + ", " + modality + " tokens";
    co.token_name = name;
    const std::string path = modality_chart_path(chart, modality);
    write_file_atomic(path, reword(train::moe_chart_svg(*stats, co), *stats, what));
    std::printf("chart: %s\n", path.c_str());
  }
  if (!q.json.empty()) {
    nlohmann::json j = train::vlmoe_routing_json(r, image_name, text_name);
    j["model"] = q.model;
    j["data"] = q.data;
    j["split"] = q.split;
    j["seed"] = q.options.seed;
    write_file_atomic(q.json, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    std::printf("json: %s\n", q.json.c_str());
  }
  std::printf("analyzed in %.1f s\n", secs);
}

}  // namespace gannet::cli
