// The quantization config (DeepSpeed's compression_training JSON, `gannet quantize --config`).
// The input is the config's text.
#include <cstdint>

#include "fuzz_support.h"
#include "gannet/compress/quant_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  gannet::fuzz::expect_clean_errors([&] { gannet::compress::scheme_from_config(text, "fuzz.json"); });
  return 0;
}
