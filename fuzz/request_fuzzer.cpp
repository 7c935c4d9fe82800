// The server's request bodies (infer/request_parser.h): /v1/completions, /tokenize and /detokenize.
// The input is the HTTP body; prompts are encoded with a small GPT-2 vocabulary.
#include <cstdint>
#include <cstdlib>

#include "fuzz_support.h"
#include "gannet/data/gpt2_bpe.h"
#include "gannet/infer/request_parser.h"
#include "small_vocab.h"

namespace {

const gannet::data::Gpt2Bpe& tokenizer() {
  static const gannet::data::Gpt2Bpe bpe = [] {
    const auto v = gannet::fuzz::small_gpt2_vocab();
    const auto dir = gannet::fuzz::scratch_dir() / "request-vocab";
    return gannet::data::Gpt2Bpe::load(gannet::fuzz::write_file(dir / "vocab.json", v.vocab_json),
                                       gannet::fuzz::write_file(dir / "merges.txt", v.merges_txt));
  }();
  return bpe;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gannet;
  const std::string body(reinterpret_cast<const char*>(data), size);
  fuzz::expect_clean_errors([&] {
    const nlohmann::json j = infer::parse_request_body(body);
    fuzz::expect_clean_errors([&] {
      const infer::CompletionRequest c = infer::parse_completion(j, tokenizer(), 1);
      if (c.gen.prompt.empty()) std::abort();  // an accepted request always has a prompt
    });
    fuzz::expect_clean_errors([&] { infer::parse_tokenize_request(j); });
    fuzz::expect_clean_errors([&] { infer::parse_detokenize_request(j); });
  });
  return 0;
}
