// Classification set files (`gannet data tasks`' output, read by fine-tuning and eval). The input
// is the file.
#include <cstdint>

#include "fuzz_support.h"
#include "gannet/data/classification_set.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gannet;
  const std::string path = fuzz::write_file(fuzz::scratch_dir() / "set.safetensors",
                                            {reinterpret_cast<const char*>(data), size});
  fuzz::expect_clean_errors([&] {
    const data::ClassificationSet s = data::read_classification_set(path);
    volatile int64_t sink = 0;
    for (int32_t y : s.label_vector()) sink = sink + y;
    for (int32_t d : s.doc_vector()) sink = sink + (int64_t)s.doc_ids.at(d).size();
    const int32_t* tok = s.tokens.data<int32_t>();
    const uint8_t* mask = s.mask.data<uint8_t>();
    for (int64_t i = 0; i < s.tokens.numel(); ++i) sink = sink + tok[i] * mask[i];
  });
  return 0;
}
