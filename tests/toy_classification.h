// A toy classification set for the encoder's training tests: three classes; a window of class c
// holds tokens from its own band [3 + 12c, 15 + 12c), with the last few positions padding, so the
// class is learnable from any real token. Vocabulary 40, windows of kToyWindow tokens.
#pragma once
#include <filesystem>
#include <string>

#include "gannet/core/rng.h"
#include "gannet/data/classification_set.h"
#include "gannet/data/classification_tasks.h"

namespace gannet::testing {

constexpr int kToyWindow = 12;

// Writes <dir>/tasks/toy/<split>.safetensors with n windows drawn from `seed`.
inline void write_toy_split(const std::string& dir, const std::string& split, int n, uint64_t seed) {
  Rng rng(seed);
  data::ClassificationSet s;
  s.task = "toy";
  s.split = split;
  s.classes = {"a", "b", "c"};
  s.window = kToyWindow;
  s.vocab_size = 40;
  s.source = "test";
  s.tokens = Tensor::empty({n, kToyWindow}, DType::i32);
  s.mask = Tensor::empty({n, kToyWindow}, DType::u8);
  s.labels = Tensor::empty({n}, DType::i32);
  s.doc = Tensor::empty({n}, DType::i32);
  for (int i = 0; i < n; ++i) {
    const int c = (int)rng.below(3), real = kToyWindow - (int)rng.below(4);
    s.labels.data<int32_t>()[i] = c;
    s.doc.data<int32_t>()[i] = i;
    s.doc_ids.push_back(split + std::to_string(i));
    for (int t = 0; t < kToyWindow; ++t) {
      s.tokens.data<int32_t>()[i * kToyWindow + t] = t < real ? 3 + 12 * c + (int32_t)rng.below(12) : 0;
      s.mask.data<uint8_t>()[i * kToyWindow + t] = t < real;
    }
  }
  const std::string path = data::classification_set_path(dir, "toy", split);
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  data::write_classification_set(path, s);
}

}  // namespace gannet::testing
