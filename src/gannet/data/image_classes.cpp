#include "gannet/data/image_classes.h"

#include <cstring>
#include <filesystem>
#include <numeric>

#include <nlohmann/json.hpp>

#include "gannet/core/error.h"
#include "gannet/core/rng.h"
#include "gannet/io/safetensors.h"

namespace gannet::data {

namespace {
std::string metadata(const io::SafeTensors& f, const std::string& key) {
  const auto it = f.metadata().find(key);
  GANNET_CHECK(it != f.metadata().end(), f.path(), ": no '", key, "' in the metadata (not a prepared data file)");
  return it->second;
}

std::vector<std::string> class_list(const io::SafeTensors& f, const std::string& key) {
  const nlohmann::json j = nlohmann::json::parse(metadata(f, key), nullptr, false);
  GANNET_CHECK(j.is_array() && !j.empty(), f.path(), ": metadata '", key, "' is not a non-empty JSON list");
  std::vector<std::string> out;
  for (const auto& v : j) {
    GANNET_CHECK(v.is_string(), f.path(), ": metadata '", key, "' holds a non-string");
    out.push_back(v.get<std::string>());
  }
  return out;
}
}  // namespace

std::string image_class_format(const std::string& dir) {
  const std::string path = dir + "/train.safetensors";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return "";
  const io::SafeTensors f = io::SafeTensors::open(path);
  const auto it = f.metadata().find("format");
  return it == f.metadata().end() ? "" : it->second;
}

std::string image_class_eval_split(const std::string& format) {
  return format == kGlyphPairsFormat ? "test_chars" : "test";
}

void check_image_class_eval_split(const std::string& format, const std::string& split) {
  if (format == kGlyphPairsFormat) {
    GANNET_CHECK(split != "test_blocks", "test_blocks holds whole Unicode blocks never seen in training: a block ",
                 "classifier cannot name them; validate on test_chars (seen blocks, unseen characters)");
    GANNET_CHECK(split == "test_chars", "'", split, "' is not a validation split of glyph data (test_chars)");
  } else {
    GANNET_CHECK(split == "test", "'", split, "' is not a validation split of ", format, " data (test)");
  }
}

ImageClassSet load_image_class_split(const std::string& dir, const std::string& split) {
  const std::string path = dir + "/" + split + ".safetensors";
  std::error_code ec;
  GANNET_CHECK(std::filesystem::is_regular_file(path, ec), path,
               ": not found (run `gannet data prepare --dataset glyphs` or `--dataset fashion-mnist`)");
  const io::SafeTensors f = io::SafeTensors::open(path);
  ImageClassSet s;
  s.format = metadata(f, "format");
  s.split = split;
  GANNET_CHECK(s.format == kGlyphPairsFormat || s.format == kImageClassesFormat, path, ": format '", s.format,
               "' is not labelled images (", kGlyphPairsFormat, " or ", kImageClassesFormat, ")");
  s.images = f.get("images");
  GANNET_CHECK(s.images.dtype() == DType::u8 && s.images.ndim() == 3 && s.images.dim(1) == s.images.dim(2), path,
               ": images is ", s.images.describe(), ", not u8 [N, S, S]");
  const int64_t n = s.images.dim(0);
  const Tensor labels = f.get(s.glyphs() ? "block" : "label", DType::i32, {n});
  s.classes = class_list(f, s.glyphs() ? "blocks" : "classes");
  s.labels.assign(labels.data<int32_t>(), labels.data<int32_t>() + n);
  for (int64_t i = 0; i < n; ++i)
    GANNET_CHECK(s.labels[i] >= 0 && s.labels[i] < s.num_classes(), path, ": image ", i, " has label ", s.labels[i],
                 ", not one of the ", s.num_classes(), " classes");
  return s;
}

ImageClassBatches::ImageClassBatches(int64_t n, int64_t batch, uint64_t seed) : n_(n), batch_(batch), seed_(seed) {
  GANNET_CHECK(batch >= 1 && batch <= n, "image batches: a batch of ", batch, " images from a set of ", n);
}

std::vector<int64_t> ImageClassBatches::batch(int64_t index) {
  const int64_t per_epoch = batches_per_epoch(), epoch = index / per_epoch, at = (index % per_epoch) * batch_;
  if (epoch != order_epoch_) {
    order_.resize(n_);
    std::iota(order_.begin(), order_.end(), 0);
    Rng rng(seed_ ^ (0xC2B2AE3D27D4EB4Full * (uint64_t)(epoch + 1)));
    for (int64_t i = n_ - 1; i > 0; --i) std::swap(order_[i], order_[rng.below(i + 1)]);
    order_epoch_ = epoch;
  }
  return {order_.begin() + at, order_.begin() + at + batch_};
}

void gather_image_classes(const ImageClassSet& set, const std::vector<int64_t>& indices, Tensor& images, Tensor& labels) {
  const int64_t B = (int64_t)indices.size(), S = set.images.dim(1), pixels = S * S;
  images = Tensor::empty({B, S, S}, DType::u8);
  labels = Tensor::empty({B}, DType::i32);
  for (int64_t i = 0; i < B; ++i) {
    std::memcpy(images.data<uint8_t>() + i * pixels, set.images.data<uint8_t>() + indices[i] * pixels, (size_t)pixels);
    labels.data<int32_t>()[i] = set.labels[(size_t)indices[i]];
  }
}

}  // namespace gannet::data
