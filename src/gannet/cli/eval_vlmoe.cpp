#include "gannet/cli/eval_vlmoe.h"

#include <cstdio>
#include <filesystem>

#include "gannet/cli/eval_vlmoe_classifier.h"
#include "gannet/cli/vlmoe_model.h"
#include "gannet/core/error.h"
#include "gannet/train/evaluate_vlmoe.h"

namespace gannet::cli {

void eval_vlmoe(const std::string& model_path, const std::string& data_dir, int64_t batch, int64_t max_batches) {
  if (is_image_classes_dir(data_dir)) return eval_vlmoe_zero_shot(model_path, data_dir, batch, max_batches);
  std::error_code ec;
  GANNET_CHECK(std::filesystem::is_directory(data_dir, ec), model_path,
               " is a VL-MoE: --data must be a glyph data directory (from `gannet data prepare --dataset glyphs`), not ",
               data_dir);
  const LoadedVlMoe m = load_vlmoe(model_path);
  std::printf("%-12s %6s %8s %8s %8s %8s %8s\n", "split", "pairs", "ITC", "i2t R@1", "i2t R@5", "t2i R@1", "t2i R@5");
  for (const std::string& split : kGlyphEvalSplits) {
    const data::GlyphSet set = data::load_glyph_split(data_dir, split);
    const train::VlMoeEval e = train::evaluate_vlmoe(*m.model, set, m.tokenizer, batch, max_batches * batch);
    const train::RetrievalRecall& r = e.recall;
    std::printf("%-12s %6ld %8.4f %7.2f%% %7.2f%% %7.2f%% %7.2f%%\n", split.c_str(), (long)e.pairs, e.loss,
                100 * r.i2t_r1, 100 * r.i2t_r5, 100 * r.t2i_r1, 100 * r.t2i_r5);
  }
  std::printf("(ITC over batches of %ld pairs; recall ranks each image against every text of the split and back)\n",
              (long)batch);
}

}  // namespace gannet::cli
