// Packed N:M sparse encoder files (`gannet compress`'s output for task nxm, read by `gannet eval`
// and the encoder engine; io/nm_sparse_encoder.h). The input is the file. A file the reader
// accepts is also run: each N:M weight multiplied with two activation rows by the reference and,
// where its pattern packs, by the packed vector product (checked equal), and one window through
// the engine, so that anything the validation misses reaches the kernels here, not a user's.
#include <cstdint>
#include <cstring>
#include <vector>

#include "encoder_window.h"
#include "fuzz_support.h"
#include "gannet/infer/encoder_engine.h"
#include "gannet/io/nm_sparse_encoder.h"
#include "gannet/kernels/nm_sparse_matmul.h"

namespace {

void multiply(const gannet::io::NmSparseTensor& t) {
  using namespace gannet;
  const kernels::NmSparseWeights w = t.view();
  const int64_t M = 2;
  std::vector<int8_t> q((size_t)(M * t.in));
  for (size_t i = 0; i < q.size(); ++i) q[i] = (int8_t)(i * 37 % 255 - 127);
  const std::vector<float> scale = {0.5f, 0.25f};
  const kernels::QuantizedRows A{q.data(), t.in, scale.data(), M, t.in};
  std::vector<float> ref((size_t)(M * t.rows)), packed((size_t)(M * t.rows));
  kernels::ref::nm_sparse_matmul(A, w, nullptr, ref.data(), t.rows);
  if (!kernels::nm_sparse_packable(w)) return;
  std::vector<uint8_t> bytes((size_t)kernels::nm_sparse_packed_bytes(w) + 64);
  void* aligned = bytes.data() + (64 - (uintptr_t)bytes.data() % 64) % 64;
  const kernels::NmSparsePacked p = kernels::pack_nm_sparse(w, aligned);
  kernels::nm_sparse_matmul(A, p, w, nullptr, packed.data(), t.rows);
  if (std::memcmp(ref.data(), packed.data(), ref.size() * sizeof(float)) != 0) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gannet;
  const std::string path = fuzz::write_file(fuzz::scratch_dir() / "model.safetensors",
                                            {reinterpret_cast<const char*>(data), size});
  fuzz::expect_clean_errors([&] {
    const io::NmSparseEncoder model = io::read_nm_sparse_encoder(path);
    const models::EncoderConfig& c = model.config;
    if (!fuzz::small_encoder(c)) return;
    for (const auto& [name, t] : model.sparse) multiply(t);
    infer::EncoderEngine engine = infer::EncoderEngine::nm_sparse(model);
    fuzz::run_one_window(engine, c);
  });
  return 0;
}
