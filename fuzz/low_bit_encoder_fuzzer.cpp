// Packed low-bit encoder files (`gannet compress`'s output, read by `gannet eval` and the encoder
// engine). The input is the file. A file the reader accepts is also run: one window through the
// low-bit engine, so that anything the validation misses reaches the kernels here, not a user's.
#include <algorithm>
#include <cstdint>

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
    if (c.n_embd * c.n_layer > 4096 || c.vocab_size > 4096) return;  // bounded work per input
    infer::EncoderEngine engine = infer::EncoderEngine::low_bit(model);
    const int64_t T = std::min<int64_t>(c.n_ctx, 4);
    Tensor tokens = Tensor::empty({1, T}, DType::i32), mask = Tensor::empty({1, T}, DType::u8);
    for (int64_t t = 0; t < T; ++t) {
      tokens.data<int32_t>()[t] = (int32_t)(t % c.vocab_size);
      mask.data<uint8_t>()[t] = 1;
    }
    const Tensor logits = engine.logits(tokens, mask);
    volatile float sink = logits.f32()[0];
    (void)sink;
  });
  return 0;
}
