#include "gannet/data/image_text_pairs.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "gannet/core/error.h"
#include "gannet/data/image_classes.h"
#include "gannet/io/safetensors.h"

namespace gannet::data {

namespace {

std::string format_of(const io::SafeTensors& f) {
  const auto it = f.metadata().find("format");
  GANNET_CHECK(it != f.metadata().end(), f.path(), ": no format metadata (prepare it with `gannet data prepare`)");
  GANNET_CHECK(it->second == kGlyphPairsFormat || it->second == kImageClassesFormat, f.path(), ": format '", it->second,
               "' is not image-text pairs (", kGlyphPairsFormat, " or ", kImageClassesFormat, ")");
  return it->second;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : " or ") + x;
  return s;
}

// An image-classes split: each image paired with its class name.
GlyphSet load_image_classes(const io::SafeTensors& f) {
  const auto it = f.metadata().find("classes");
  GANNET_CHECK(it != f.metadata().end(), f.path(), ": no classes metadata");
  const nlohmann::json classes = nlohmann::json::parse(it->second, nullptr, false);
  GANNET_CHECK(classes.is_array() && !classes.empty(), f.path(), ": classes metadata is not a JSON list of names");
  GlyphSet set;
  set.images = f.get("images");
  GANNET_CHECK(set.images.dtype() == DType::u8 && set.images.ndim() == 3, f.path(), ": images is ",
               set.images.describe(), ", not u8 [N, S, S]");
  const Tensor label = f.get("label", DType::i32, {set.images.dim(0)});
  for (int64_t i = 0; i < label.numel(); ++i) {
    const int32_t l = label.data<int32_t>()[i];
    GANNET_CHECK(l >= 0 && l < (int64_t)classes.size() && classes[(size_t)l].is_string(), f.path(), ": label ", l,
                 " of image ", i, " is not one of the ", classes.size(), " named classes");
    set.names.push_back(classes[(size_t)l].get<std::string>());
  }
  return set;
}

}  // namespace

ImageTextFormat image_text_format(const std::string& dir) {
  const std::string format = format_of(io::SafeTensors::open(dir + "/train.safetensors"));
  if (format == kGlyphPairsFormat) return {"glyphs", {"test_chars", "test_blocks"}};
  return {"fashion-mnist", {"test"}};
}

GlyphSet load_image_text_split(const std::string& dir, const std::string& split) {
  const ImageTextFormat format = image_text_format(dir);
  const std::vector<std::string>& held_out = format.eval_splits;
  GANNET_CHECK(split == "train" || std::find(held_out.begin(), held_out.end(), split) != held_out.end(), dir,
               ": '", split, "' is not a split of ", format.dataset, " data (train, ", join(held_out), ")");
  if (format.dataset == "glyphs") return load_glyph_split(dir, split);
  const io::SafeTensors f = io::SafeTensors::open(dir + "/" + split + ".safetensors");
  GANNET_CHECK(format_of(f) == kImageClassesFormat, f.path(), ": not of the train split's format ", kImageClassesFormat);
  return load_image_classes(f);
}

std::string resolve_eval_split(const ImageTextFormat& format, const std::string& split) {
  if (split.empty()) return format.eval_splits.front();
  const std::vector<std::string>& held_out = format.eval_splits;
  GANNET_CHECK(std::find(held_out.begin(), held_out.end(), split) != held_out.end(), "vlmoe.eval_split: '", split,
               "' is not a held-out split of ", format.dataset, " data (", join(held_out), ")");
  return split;
}

}  // namespace gannet::data
