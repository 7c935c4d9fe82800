#include "gannet/cli/eval_encoder.h"

#include <cstdio>
#include <filesystem>

#include "gannet/core/format_number.h"
#include "gannet/infer/encoder_engine.h"
#include "gannet/io/encoder_checkpoint.h"
#include "gannet/io/low_bit_encoder.h"
#include "gannet/io/nm_sparse_encoder.h"
#include "gannet/io/safetensors.h"
#include "gannet/metrics/majority_baseline.h"
#include "gannet/train/evaluate_encoder.h"

namespace gannet::cli {

namespace fs = std::filesystem;

namespace {
std::string percent(double share) { return fixed(100 * share, 2) + "%"; }

// The classifier of `config`, computed by `logits` (`how`: "" for the training model, else e.g.
// ", engine f32"), on a classification set, beside the majority baseline.
void eval_classifier(const models::EncoderConfig& config, const train::ClassifierLogits& logits,
                     const std::string& how, const std::string& data_path, int64_t batch, int64_t max_batches) {
  const data::ClassificationSet set = data::read_classification_set(data_path);
  GANNET_CHECK(set.num_classes() == config.num_classes, data_path, " has ", set.num_classes(),
               " classes, the model's classifier ", config.num_classes);
  GANNET_CHECK(set.window <= config.n_ctx, data_path, ": windows of ", set.window,
               " tokens, more than the model's n_ctx ", config.n_ctx);
  GANNET_CHECK(set.vocab_size <= config.vocab_size, data_path, " has vocabulary ", set.vocab_size,
               ", larger than the model's ", config.vocab_size);
  const train::ClassifierEval e = train::evaluate_classifier(logits, set, batch, max_batches * batch);
  std::printf("accuracy %s  macro-F1 %s  loss %.4f  (%ld windows of %s %s%s)\n", percent(e.confusion.accuracy()).c_str(),
              percent(e.confusion.macro_f1()).c_str(), e.loss, (long)e.confusion.total(), set.task.c_str(),
              set.split.c_str(), how.c_str());
  const fs::path train_path = fs::path(data_path).parent_path() / "train.safetensors";
  if (set.split == "train" || !fs::exists(train_path)) return;
  const data::ClassificationSet train = data::read_classification_set(train_path.string());
  std::vector<int32_t> labels = set.label_vector();
  labels.resize((size_t)e.confusion.total());  // the windows evaluated
  const metrics::MajorityBaseline b = metrics::majority_baseline(train.label_vector(), labels, set.num_classes());
  std::printf("majority baseline (always '%s', the commonest class of %s): accuracy %s  macro-F1 %s\n",
              set.classes[(size_t)b.majority_class].c_str(), train_path.string().c_str(), percent(b.accuracy).c_str(),
              percent(b.macro_f1).c_str());
}

void eval_mlm(const models::Encoder& model, const std::string& data_path, int64_t batch, int64_t max_batches) {
  const data::TokenFile file = data::TokenFile::open(data_path);
  GANNET_CHECK(file.vocab_size() <= model.config().vocab_size, data_path, " has vocabulary ", file.vocab_size(),
               ", larger than the model's ", model.config().vocab_size);
  data::MlmMaskingOptions masking;
  masking.vocab_size = model.config().vocab_size;
  const train::MlmEval e =
      train::evaluate_mlm(model, file, model.config().n_ctx, batch, max_batches, masking, train::kMlmEvalSeed);
  std::printf("masked-token accuracy %s  loss %.4f  (%ld masked tokens, BERT masking, seed %lu)\n",
              percent(e.accuracy).c_str(), e.loss, (long)e.masked, (unsigned long)train::kMlmEvalSeed);
}
}  // namespace

bool is_encoder_model(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec) || fs::path(path).extension() != ".safetensors") return false;
  return io::checkpoint_model_type(io::SafeTensors::open(path)) == "encoder";
}

void eval_encoder(const std::string& model_path, const std::string& data_path, int64_t batch, int64_t max_batches,
                  bool engine) {
  const bool classification_set = fs::path(data_path).extension() == ".safetensors";
  if (io::is_low_bit_encoder(io::SafeTensors::open(model_path))) {
    GANNET_CHECK(classification_set, model_path,
                 " is a packed low-bit classifier: evaluate it on a classification set, e.g. "
                 "data/brown/tasks/brown-genre/val.safetensors");
    const io::LowBitEncoder packed = io::read_low_bit_encoder(model_path);
    infer::EncoderEngine e = infer::EncoderEngine::low_bit(packed);
    eval_classifier(packed.config, [&](const Tensor& t, const Tensor& m) { return e.logits(t, m); },
                    ", engine " + packed.scheme, data_path, batch, max_batches);
    return;
  }
  if (io::holds_nm_sparse_weights(io::SafeTensors::open(model_path))) {
    GANNET_CHECK(classification_set, model_path,
                 " is a packed N:M sparse classifier: evaluate it on a classification set, e.g. "
                 "data/brown/tasks/brown-genre/val.safetensors");
    const io::NmSparseEncoder packed = io::read_nm_sparse_encoder(model_path);
    infer::EncoderEngine e = infer::EncoderEngine::nm_sparse(packed);
    eval_classifier(packed.config, [&](const Tensor& t, const Tensor& m) { return e.logits(t, m); },
                    (packed.sparse.empty() ? ", engine packed " : ", engine N:M ") + e.describe(), data_path, batch,
                    max_batches);
    return;
  }
  models::Encoder model(io::read_encoder_checkpoint_config(model_path));
  io::load_encoder_checkpoint(model_path, model, nullptr, nullptr);
  if (classification_set) {
    GANNET_CHECK(model.config().num_classes > 0, model_path,
                 " has no classifier (an MLM encoder): evaluate it on a token file, e.g. data/brown/val.tok");
    if (engine) {
      infer::EncoderEngine e = infer::EncoderEngine::f32(model);
      eval_classifier(model.config(), [&](const Tensor& t, const Tensor& m) { return e.logits(t, m); },
                      ", engine f32", data_path, batch, max_batches);
      return;
    }
    eval_classifier(model.config(), [&](const Tensor& t, const Tensor& m) { return model.logits(t, m).value(); }, "",
                    data_path, batch, max_batches);
    return;
  }
  GANNET_CHECK(!engine, "--engine runs an encoder's classifier; ", model_path, "'s MLM head runs on the training model");
  GANNET_CHECK(model.config().mlm_head, model_path,
               " has no MLM head (a classifier): evaluate it on a classification set, e.g. "
               "data/brown/tasks/brown-genre/val.safetensors");
  eval_mlm(model, data_path, batch, max_batches);
}

}  // namespace gannet::cli
