#include "gannet/cli/vlmoe_search_command.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <numeric>

#include "gannet/cli/number_options.h"
#include "gannet/cli/vlmoe_query.h"
#include "gannet/kernels/gemm.h"
#include "gannet/train/vlmoe_embeddings.h"

namespace gannet::cli {

namespace {
struct SearchArgs {
  VlMoeQueryArgs query;
  std::string split = "test_chars";
  int64_t k = 5;
  int threads = 0;
};

void run(const SearchArgs& a) {
  if (a.threads > 0) kernels::set_num_threads(a.threads);
  const LoadedVlMoe m = load_vlmoe(a.query.model, a.query.tokenizer);
  const VlMoeQuery q = embed_query(m, a.query);
  const GlyphSplit s = load_glyph_split_with_code_points(a.query.data, a.split);
  // An image query ranks the split's texts, a text query its images.
  const Tensor candidates = q.image ? train::embed_texts(*m.model, m.tokenizer, s.set.names)
                                    : train::embed_images(*m.model, s.set.images);
  const int64_t n = candidates.dim(0), dim = candidates.dim(1);
  std::vector<float> cosine((size_t)n);
  kernels::gemm(false, true, 1, n, dim, 1.0f, q.vector.f32(), dim, candidates.f32(), dim, 0.0f, cosine.data(), n);
  std::vector<int64_t> order((size_t)n);
  std::iota(order.begin(), order.end(), 0);
  const int64_t k = std::min(a.k, n);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t x, int64_t y) {
    return cosine[(size_t)x] != cosine[(size_t)y] ? cosine[(size_t)x] > cosine[(size_t)y] : x < y;
  });
  if (q.image)
    std::printf("texts of %s nearest the image of %s %s:\n", a.split.c_str(), code_point_str(q.glyph.code_point).c_str(),
                q.glyph.name.c_str());
  else
    std::printf("images of %s nearest \"%s\":\n", a.split.c_str(), q.text.c_str());
  for (int64_t r = 0; r < k; ++r) {
    const int64_t i = order[(size_t)r];
    std::printf("%3ld  %9.6f  %s  %s\n", (long)(r + 1), cosine[(size_t)i], code_point_str(s.code_points[(size_t)i]).c_str(),
                s.set.names[(size_t)i].c_str());
  }
}
}  // namespace

void add_search_command(CLI::App& app) {
  auto a = std::make_shared<SearchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "search",
      "Retrieval by hand with a VL-MoE: the k texts (glyph names) of a glyph split nearest an image, or the k images "
      "nearest a text, by the cosine of their ITC projections (each encoded alone); one line each: rank, cosine, code "
      "point, name");
  add_vlmoe_query_options(cmd, a->query);
  cmd->add_option("--split", a->split, "the glyph split searched")
      ->capture_default_str()
      ->check(CLI::IsMember({"train", "test_chars", "test_blocks"}));
  cmd->add_option("-k,--top", a->k, "results shown")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::at_least(1)));
  add_threads_option(cmd, a->threads);
  cmd->callback([a]() { run(*a); });
}

}  // namespace gannet::cli
