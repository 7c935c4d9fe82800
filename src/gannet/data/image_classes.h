// Labelled images for VL-MoE's image classification (issue 21), read back from a prepared data
// directory of either format (docs/vlmoe.md):
// - glyphs (`gannet data prepare --dataset glyphs`, format "gannet-glyph-pairs-1"): the label is
//   the glyph's Unicode block (tensor `block`, the classes the metadata's `blocks` list: every
//   block of the data, the same in every split); train for training, test_chars for validation
//   (test_blocks holds blocks never seen in training, so a block classifier cannot name them);
// - fashion-mnist (format "gannet-image-classes-1"): tensor `label`, metadata `classes`; train and
//   test.
// And the data order of training: epochs of fresh permutations from (seed, epoch), a batch the
// (index mod E)-th run of `batch` images of epoch index / E (E = floor(N / batch)), so that a
// resumed run draws what an uninterrupted one would.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gannet/core/tensor.h"

namespace gannet::data {

inline constexpr const char* kGlyphPairsFormat = "gannet-glyph-pairs-1";
inline constexpr const char* kImageClassesFormat = "gannet-image-classes-1";

struct ImageClassSet {
  std::string format;               // one of the two above
  std::string split;                // "train", "test_chars", "test"
  Tensor images;                    // u8 [N, S, S]
  std::vector<int32_t> labels;      // [N], each < classes.size()
  std::vector<std::string> classes; // class names, label order
  int64_t size() const { return (int64_t)labels.size(); }
  int num_classes() const { return (int)classes.size(); }
  bool glyphs() const { return format == kGlyphPairsFormat; }
};

// The format of DIR's train split ("" when DIR/train.safetensors is absent or declares none).
std::string image_class_format(const std::string& dir);
// The validation split of a format: test_chars (glyphs) or test (fashion-mnist).
std::string image_class_eval_split(const std::string& format);
// Checks that `split` can validate a classifier of data `format`: test_blocks (glyphs) is an error
// naming the reason, as is a split the format does not have.
void check_image_class_eval_split(const std::string& format, const std::string& split);
// Reads DIR/<split>.safetensors; one-line errors name the file (missing, unknown format, bad
// tensors or metadata, a label outside the classes).
ImageClassSet load_image_class_split(const std::string& dir, const std::string& split);

class ImageClassBatches {
 public:
  // batch must be in [1, n].
  ImageClassBatches(int64_t n, int64_t batch, uint64_t seed);
  // The indices of batch `index` of the run.
  std::vector<int64_t> batch(int64_t index);
  int64_t batches_per_epoch() const { return n_ / batch_; }

 private:
  int64_t n_, batch_;
  uint64_t seed_;
  std::vector<int64_t> order_;
  int64_t order_epoch_ = -1;
};

// The images and labels of `indices` of `set`: images u8 [B, S, S], labels i32 [B].
void gather_image_classes(const ImageClassSet& set, const std::vector<int64_t>& indices, Tensor& images, Tensor& labels);

}  // namespace gannet::data
