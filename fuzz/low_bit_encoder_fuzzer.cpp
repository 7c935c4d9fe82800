// Packed low-bit encoder files (`gannet compress`'s output, read by `gannet eval` and the encoder
// engine). The input is the file. A file the reader accepts is also run: one window through the
// low-bit engine, so that anything the validation misses reaches the kernels here, not a user's.
#include <cstdint>

#include "encoder_window.h"
#include "fuzz_support.h"
#include "gannet/infer/encoder_engine.h"
#include "gannet/io/low_bit_encoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gannet;
  const std::string path = fuzz::write_file(fuzz::scratch_dir() / "model.safetensors",
                                            {reinterpret_cast<const char*>(data), size});
  fuzz::expect_clean_errors([&] {
    const io::LowBitEncoder model = io::read_low_bit_encoder(path);
    const models::EncoderConfig& c = model.config;
    if (!fuzz::small_encoder(c)) return;
    infer::EncoderEngine engine = infer::EncoderEngine::low_bit(model);
    fuzz::run_one_window(engine, c);
  });
  return 0;
}
