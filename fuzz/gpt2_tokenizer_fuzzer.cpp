// GPT-2's tokenizer files and the encoder over them: the input is vocab.json, merges.txt and a
// text, separated by kSplit lines. Loading may refuse the files (gannet::Error); once loaded, any
// byte string must encode to ids in the vocabulary and decode back to itself (gpt2_bpe.h).
#include <cstdint>
#include <cstdlib>

#include "fuzz_support.h"
#include "gannet/data/gpt2_bpe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gannet;
  const std::vector<std::string> parts = fuzz::split_input(data, size, 3);
  const auto dir = fuzz::scratch_dir() / "gpt2";
  const std::string vocab = fuzz::write_file(dir / "vocab.json", parts[0]);
  const std::string merges = fuzz::write_file(dir / "merges.txt", parts[1]);
  fuzz::expect_clean_errors([&] {
    const data::Gpt2Bpe bpe = data::Gpt2Bpe::load(vocab, merges);
    const std::vector<int32_t> ids = bpe.encode(parts[2]);
    for (int32_t id : ids)
      if (id < 0 || id >= bpe.vocab_size()) std::abort();
    if (bpe.decode(ids) != parts[2]) std::abort();  // decode(encode(s)) == s for every byte string
  });
  return 0;
}
