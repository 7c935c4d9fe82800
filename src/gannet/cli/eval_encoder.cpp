#include "gannet/cli/eval_encoder.h"

#include <cstdio>
#include <filesystem>

#include "gannet/core/format_number.h"
#include "gannet/io/encoder_checkpoint.h"
#include "gannet/metrics/majority_baseline.h"
#include "gannet/train/evaluate_encoder.h"

namespace gannet::cli {

namespace fs = std::filesystem;

namespace {
std::string percent(double share) { return fixed(100 * share, 2) + "%"; }

void eval_classifier(const models::Encoder& model, const std::string& data_path, int64_t batch, int64_t max_batches) {
  const data::ClassificationSet set = data::read_classification_set(data_path);
  GANNET_CHECK(set.num_classes() == model.config().num_classes, data_path, " has ", set.num_classes(),
               " classes, the model's classifier ", model.config().num_classes);
  GANNET_CHECK(set.window <= model.config().n_ctx, data_path, ": windows of ", set.window,
               " tokens, more than the model's n_ctx ", model.config().n_ctx);
  GANNET_CHECK(set.vocab_size <= model.config().vocab_size, data_path, " has vocabulary ", set.vocab_size,
               ", larger than the model's ", model.config().vocab_size);
  const train::ClassifierEval e = train::evaluate_classifier(model, set, batch, max_batches * batch);
  std::printf("accuracy %s  macro-F1 %s  loss %.4f  (%ld windows of %s %s)\n", percent(e.confusion.accuracy()).c_str(),
              percent(e.confusion.macro_f1()).c_str(), e.loss, (long)e.confusion.total(), set.task.c_str(),
              set.split.c_str());
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

void eval_encoder(const std::string& model_path, const std::string& data_path, int64_t batch, int64_t max_batches) {
  models::Encoder model(io::read_encoder_checkpoint_config(model_path));
  io::load_encoder_checkpoint(model_path, model, nullptr, nullptr);
  if (fs::path(data_path).extension() == ".safetensors") {
    GANNET_CHECK(model.config().num_classes > 0, model_path,
                 " has no classifier (an MLM encoder): evaluate it on a token file, e.g. data/brown/val.tok");
    eval_classifier(model, data_path, batch, max_batches);
    return;
  }
  GANNET_CHECK(model.config().mlm_head, model_path,
               " has no MLM head (a classifier): evaluate it on a classification set, e.g. "
               "data/brown/tasks/brown-genre/val.safetensors");
  eval_mlm(model, data_path, batch, max_batches);
}

}  // namespace gannet::cli
