#include "gannet/cli/calibration_batches.h"

#include "gannet/core/error.h"
#include "gannet/core/rng.h"
#include "gannet/data/token_file.h"

namespace gannet::cli {

std::vector<Tensor> file_batches(const std::string& path, const models::GptConfig& c, int64_t n, int64_t B,
                                 int64_t T, uint64_t seed) {
  data::TokenFile f = data::TokenFile::open(path);
  GANNET_CHECK(f.vocab_size() <= c.vocab_size, path, " has vocabulary ", f.vocab_size(), ", larger than the model's ",
               c.vocab_size);
  GANNET_CHECK(f.size() > T, path, " holds ", f.size(), " tokens, fewer than one calibration window of ", T + 1);
  Rng rng(seed);
  std::vector<Tensor> out;
  for (int64_t i = 0; i < n; ++i) {
    Tensor t = Tensor::empty({B, T}, DType::i32);
    for (int64_t b = 0; b < B; ++b) f.read((int64_t)rng.below((uint64_t)(f.size() - T)), T, t.data<int32_t>() + b * T);
    out.push_back(t);
  }
  return out;
}

}  // namespace gannet::cli
