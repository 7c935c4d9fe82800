#include "gannet/cli/compress_lm_student.h"

#include <cstdio>
#include <filesystem>

#include "gannet/compress/nm_gpt_pack.h"
#include "gannet/infer/evaluate.h"
#include "gannet/io/checkpoint.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/train/evaluate.h"
#include "gannet/train/prepared_token_files.h"

namespace gannet::cli {

bool lm_student_packs(const train::TrainConfig& cfg) {
  for (const auto& layer : cfg.nxm.resolve(cfg.model.n_layer))
    for (const compress::NmProductForm& f : layer)
      if (f.pattern) return false;
  return true;
}

namespace {
// The student's latent weights from its training checkpoint (the task's state tensors left out).
io::GptWeights student_weights(const train::TrainConfig& cfg, const std::string& checkpoint) {
  models::Gpt m(cfg.model);
  io::load_checkpoint(checkpoint, m, nullptr, nullptr);
  io::GptWeights w;
  w.config = m.config();
  for (const nn::Parameter& p : m.parameters()) w.tensors[p.name] = p.var.value();
  return w;
}
}  // namespace

void finish_lm_student(const train::TrainConfig& cfg, const train::TrainResult& r, const std::string& out) {
  models::Gpt teacher(cfg.model);
  io::load_checkpoint(cfg.teacher_checkpoint, teacher, nullptr, nullptr);
  const train::PreparedTokenFiles files = train::open_prepared_token_files(cfg.data_dir, cfg.model.vocab_size);
  const train::EvalResult t = train::evaluate(teacher, files.val, cfg.seq_len, cfg.micro_batch, cfg.eval_batches);
  std::printf("validation perplexity on %ld tokens of %s/val.tok: student (simulated, its products as trained) %.2f, "
              "teacher f32 %.2f: %+.2f%%\n",
              (long)t.tokens, cfg.data_dir.c_str(), r.val_perplexity, t.perplexity,
              100.0 * (r.val_perplexity / t.perplexity - 1.0));
  if (!lm_student_packs(cfg)) {
    std::printf("checkpoint: %s (sparse products: a packed N:M GPT file is not written yet)\n", r.checkpoint.c_str());
    return;
  }
  const io::GptWeights packed =
      compress::pack_dense_gpt_student(student_weights(cfg, r.checkpoint), cfg.nxm.resolve(cfg.model.n_layer));
  io::write_gpt_weights(out, packed);
  infer::EngineOptions eo;
  eo.max_context = cfg.seq_len;
  infer::Engine engine(packed, eo);
  const infer::TextLoss p = infer::evaluate_text(engine, files.val, cfg.seq_len, cfg.eval_batches * cfg.micro_batch);
  std::printf("packed: %s (%s, %.2f MB): perplexity on the engine %.2f, teacher f32 %.2f: %+.2f%%\n", out.c_str(),
              packed.scheme.c_str(), (double)std::filesystem::file_size(out) / 1e6, p.perplexity, t.perplexity,
              100.0 * (p.perplexity / t.perplexity - 1.0));
}

}  // namespace gannet::cli
