// Image-text pairs for VL-MoE's pre-training from either prepared data set, told apart by the
// `format` metadata of DIR/train.safetensors (not by the directory's name):
// - `gannet-glyph-pairs-1` (`gannet data prepare --dataset glyphs`): each glyph with its Unicode name
//   (data/glyph_batches.h's load_glyph_split); held-out splits test_chars (the default) and
//   test_blocks.
// - `gannet-image-classes-1` (`--dataset fashion-mnist`): each image with its class's name from the
//   file's `classes` metadata, indexed by its `label`; held-out split test. The names repeat: a
//   batch holds several pairs of one class (ITC treats them all as positives,
//   models/vlmoe_losses.h).
#pragma once
#include <string>
#include <vector>

#include "gannet/data/glyph_batches.h"

namespace gannet::data {

struct ImageTextFormat {
  std::string dataset;                  // "glyphs" or "fashion-mnist"
  std::vector<std::string> eval_splits;  // the held-out splits, the default first
};

// The format of DIR's prepared pairs, from DIR/train.safetensors' metadata; an error naming the
// file when it is missing or of another format.
ImageTextFormat image_text_format(const std::string& dir);

// DIR/<split> as pairs of (image, text), in the file's order, for either format. `split` must be
// "train" or one of the format's eval_splits.
GlyphSet load_image_text_split(const std::string& dir, const std::string& split);

// `split` if given (an error naming vlmoe.eval_split when it is not one of the format's held-out
// splits), else the format's default.
std::string resolve_eval_split(const ImageTextFormat& format, const std::string& split);

}  // namespace gannet::data
