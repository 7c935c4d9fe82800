// N:M sparse weight tensors in a safetensors file (io/nm_sparse_tensor.h). The input is the file,
// whose "weights" metadata maps each weight's name to its entry. A weight the reader accepts is also
// multiplied with two activation rows, by the reference and, where its pattern packs, by the packed
// vector product (checked equal), so that anything the validation misses reaches the kernels here.
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_support.h"
#include "gannet/io/json_config.h"
#include "gannet/io/nm_sparse_tensor.h"
#include "gannet/io/safetensors.h"
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
  const std::string path = fuzz::write_file(fuzz::scratch_dir() / "weights.safetensors",
                                            {reinterpret_cast<const char*>(data), size});
  fuzz::expect_clean_errors([&] {
    const io::SafeTensors f = io::SafeTensors::open(path);
    const auto meta = f.metadata().find("weights");
    GANNET_CHECK(meta != f.metadata().end(), path, ": no 'weights' metadata");
    const nlohmann::json doc = io::parse_json_text(meta->second, path + " weights");
    GANNET_CHECK(doc.is_object(), path, ": weights metadata is not a JSON object");
    const io::JsonReader r(doc, path + " weights");
    for (const auto& item : doc.items()) {
      const io::NmSparseTensor t = io::NmSparseTensor::read(f, item.key(), r.child(item.key()));
      if (t.rows * t.in <= (int64_t(1) << 16)) multiply(t);  // bounded work per input
    }
  });
  return 0;
}
