// The training config (JSON), its data-efficiency section (curriculum, random-LTD, layer-token
// learning rate) included. The input is the config's text.
#include <cstdint>

#include "fuzz_support.h"
#include "gannet/train/train_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  gannet::fuzz::expect_clean_errors([&] { gannet::train::parse_train_config(text, "fuzz.json"); });
  return 0;
}
