#include "gannet/train/classification_batches.h"

#include <cstring>
#include <filesystem>

#include "gannet/data/classification_tasks.h"

namespace gannet::train {

namespace {
// Rows `rows` of a [N, ...] tensor into `out` [rows.size(), ...].
void gather(const Tensor& from, const std::vector<int64_t>& rows, Tensor& out) {
  const size_t row_bytes = from.nbytes() / (size_t)from.dim(0);
  const char* src = static_cast<const char*>(from.raw());
  char* dst = static_cast<char*>(out.raw());
  for (size_t i = 0; i < rows.size(); ++i) std::memcpy(dst + i * row_bytes, src + rows[i] * row_bytes, row_bytes);
}
}  // namespace

data::ClassificationSet open_classification_split(const TrainConfig& cfg, const models::EncoderConfig& model,
                                                  const char* split) {
  const std::string path = data::classification_set_path(cfg.data_dir, cfg.classify_set, split);
  GANNET_CHECK(std::filesystem::exists(path), "missing ", path, ": run `gannet data tasks --data ", cfg.data_dir,
               "` first");
  data::ClassificationSet set = data::read_classification_set(path);
  GANNET_CHECK(set.window <= model.n_ctx, path, ": windows of ", set.window, " tokens, more than model.n_ctx ",
               model.n_ctx);
  GANNET_CHECK(set.vocab_size <= model.vocab_size, path, " has vocabulary ", set.vocab_size,
               ", more than model.vocab_size ", model.vocab_size);
  return set;
}

ClassificationBatches::ClassificationBatches(const TrainConfig& cfg, const models::EncoderConfig& model,
                                             uint64_t seed)
    : micro_batch_(cfg.micro_batch),
      train_(open_classification_split(cfg, model, "train")),
      val_(open_classification_split(cfg, model, "val")),
      rng_(seed) {
  GANNET_CHECK(val_.classes == train_.classes && val_.window == train_.window, val_.task, ": the val split's classes or ",
               "window differ from the train split's");
  GANNET_CHECK(train_.size() > 0 && val_.size() > 0, cfg.classify_set, ": a split holds no window");
  tokens_ = Tensor::empty({micro_batch_, train_.window}, DType::i32);
  mask_ = Tensor::empty({micro_batch_, train_.window}, DType::u8);
  labels_ = Tensor::empty({micro_batch_}, DType::i32);
}

void ClassificationBatches::draw(bool mine) {
  std::vector<int64_t> rows((size_t)micro_batch_);
  for (int64_t& r : rows) r = (int64_t)rng_.below((uint64_t)train_.size());
  if (!mine) return;
  gather(train_.tokens, rows, tokens_);
  gather(train_.mask, rows, mask_);
  gather(train_.labels, rows, labels_);
}

std::string ClassificationBatches::describe(const std::string& set) const {
  return str("data ", set, " (", train_.size(), " train windows of ", train_.window, " tokens, ", train_.num_classes(),
             " classes)");
}

}  // namespace gannet::train
