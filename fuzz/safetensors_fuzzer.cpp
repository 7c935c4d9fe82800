// The safetensors reader and the model loader over it: plain float models, checkpoints and
// quantized models (their config and quantization in the metadata). The input is the file.
#include <cstdint>

#include "fuzz_support.h"
#include "gannet/core/tensor.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/io/safetensors.h"

namespace {

// Reads every byte of a tensor, so that a view past the mapping is an ASan report.
uint64_t touch(const gannet::Tensor& t) {
  const auto* p = static_cast<const uint8_t*>(t.raw());
  uint64_t sum = 0;
  for (size_t i = 0; i < t.nbytes(); ++i) sum += p[i];
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gannet;
  const std::string path = fuzz::write_file(fuzz::scratch_dir() / "model.safetensors",
                                            {reinterpret_cast<const char*>(data), size});
  volatile uint64_t sink = 0;
  fuzz::expect_clean_errors([&] {
    const io::SafeTensors st = io::SafeTensors::open(path);
    for (const std::string& name : st.names()) fuzz::expect_clean_errors([&] { sink = sink + touch(st.get(name)); });
  });
  fuzz::expect_clean_errors([&] {
    const io::GptWeights w = io::read_gpt_weights(path);
    for (const auto& [name, t] : w.tensors) sink = sink + touch(t);
    for (const auto& [name, q] : w.quantized) {
      sink = sink + touch(q.q) + touch(q.scale);
      if (!q.symmetric()) sink = sink + touch(q.zero);
    }
  });
  return 0;
}
