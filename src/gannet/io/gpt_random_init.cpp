#include "gannet/io/gpt_random_init.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"
#include "gannet/core/rng.h"
#include "gannet/io/gpt_weights.h"
#include "gannet/io/model_config.h"
#include "gannet/io/safetensors.h"

namespace gannet::io {

namespace {

// Elements per generator (see the header) and per piece written: 16M elements, 64 MiB in f32.
constexpr int64_t kBlock = 65536;
constexpr int64_t kPiece = 256 * kBlock;

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The seed of block `block` of tensor `tensor` (its index in gpt_weight_shapes).
uint64_t block_seed(uint64_t seed, int64_t tensor, int64_t block) {
  return mix64(mix64(mix64(seed) ^ (uint64_t)tensor) ^ (uint64_t)block);
}

// Fills out[0, n) with normal(0, std) draws: Box-Muller on two 24-bit uniforms per pair (both
// of its values used), in float; the tails are cut at 5.8 standard deviations, which a weight
// initialization never notices (Rng::normal draws one value per pair in double; this is ~4x faster).
void fill_normal(float* out, int64_t n, float sd, uint64_t seed) {
  Rng rng(seed);
  constexpr float kInv24 = 1.0f / 16777216.0f, kTwoPi = 6.2831853071795864f;
  int64_t i = 0;
  for (; i + 1 < n; i += 2) {
    const uint64_t u = rng.next_u64();
    const float u1 = (float)((u >> 40) + 1) * kInv24;                // (0, 1]
    const float u2 = (float)((u >> 8) & 0xffffffu) * kInv24;         // [0, 1)
    const float r = sd * std::sqrt(-2.0f * std::log(u1));
    float s, c;
    ::sincosf(kTwoPi * u2, &s, &c);
    out[i] = r * c;
    out[i + 1] = r * s;
  }
  if (i < n) {
    const uint64_t u = rng.next_u64();
    const float u1 = (float)((u >> 40) + 1) * kInv24;
    const float u2 = (float)((u >> 8) & 0xffffffu) * kInv24;
    out[i] = sd * std::sqrt(-2.0f * std::log(u1)) * std::cos(kTwoPi * u2);
  }
}

// The value a tensor set to a constant holds: LayerNorm weights 1, biases 0.
float constant_of(const std::string& name) { return name.ends_with(".bias") ? 0.f : 1.f; }

std::string parent_of(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

// The temporary being written: removed unless released after the rename.
struct Temporary {
  std::string path;
  int fd = -1;
  bool keep = false;
  ~Temporary() {
    if (fd >= 0) ::close(fd);
    if (!keep) ::unlink(path.c_str());
  }
};

}  // namespace

float random_gpt_init_std(const std::string& name, const models::GptConfig& config) {
  if (name.ends_with(".bias")) return 0.f;
  if (name == "ln_f.weight" || name.ends_with(".ln_1.weight") || name.ends_with(".ln_2.weight")) return 0.f;
  if (name == "wpe.weight") return 0.01f;
  if (name.ends_with("c_proj.weight")) return 0.02f / std::sqrt(2.f * (float)config.n_layer);
  return 0.02f;  // wte, attn.c_attn, mlp.c_fc, moe.gate, moe.experts.c_fc, moe.coefficient
}

RandomGptSummary write_random_gpt(const std::string& path, const models::GptConfig& config, DType dtype,
                                  uint64_t seed, const std::function<void(const RandomGptProgress&)>& progress) {
  GANNET_CHECK(dtype == DType::f32 || dtype == DType::bf16, "cannot write ", path, ": a random model is f32 or bf16, not ",
               dtype_name(dtype));
  try {
    config.validate();
  } catch (const Error& e) {
    fail(str("cannot write ", path, ": ", e.what()));
  }
  const auto shapes = gpt_weight_shapes(config);
  std::vector<TensorEntry> entries;
  RandomGptSummary summary;
  RandomGptProgress at;
  for (const auto& [name, shape] : shapes) {
    const int64_t n = shape_numel(shape);
    entries.push_back({name, dtype, shape, (uint64_t)dtype_bytes(dtype, n)});
    summary.parameters += n;
    at.bytes_total += entries.back().nbytes;
  }
  at.tensors_total = (int64_t)shapes.size();
  // What write_gpt_weights writes, and save_checkpoint's model_type.
  const std::map<std::string, std::string> metadata = {{"format", "gannet-checkpoint-1"},
                                                       {"model_type", "gpt"},
                                                       {"model_config", gpt_config_to_json(config).dump()},
                                                       {"step", "0"},
                                                       {"rng", "0,0,0,0"}};
  const std::string header = safetensors_header(path, entries, metadata);
  summary.file_bytes = header.size() + at.bytes_total;

  remove_stale_temporaries(parent_of(path), std::filesystem::path(path).filename().string());
  Temporary tmp{temporary_path(path)};
  tmp.fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (tmp.fd < 0) fail(str("cannot write ", path, ": ", std::strerror(errno)));
  auto write_bytes = [&](const void* p, size_t n) {
    if (int err = write_all(tmp.fd, static_cast<const char*>(p), n)) fail(str("cannot write ", path, ": ", std::strerror(err)));
  };
  write_bytes(header.data(), header.size());

  int64_t largest = 0;
  for (const auto& [name, shape] : shapes) largest = std::max(largest, shape_numel(shape));
  std::vector<float> values((size_t)std::min(largest, kPiece));
  std::vector<uint16_t> halves(dtype == DType::bf16 ? values.size() : 0);
  for (size_t t = 0; t < shapes.size(); ++t) {
    const std::string& name = shapes[t].first;
    const int64_t n = shape_numel(shapes[t].second);
    const float sd = random_gpt_init_std(name, config);
    for (int64_t begin = 0; begin < n; begin += kPiece) {
      const int64_t count = std::min(kPiece, n - begin);
      if (sd == 0.f) {
        std::fill(values.begin(), values.begin() + count, constant_of(name));
      } else {
        const int64_t first_block = begin / kBlock, blocks = (count + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
        for (int64_t b = 0; b < blocks; ++b) {
          const int64_t from = b * kBlock;
          fill_normal(values.data() + from, std::min(kBlock, count - from), sd,
                      block_seed(seed, (int64_t)t, first_block + b));
        }
      }
      if (dtype == DType::bf16) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < count; ++i) halves[i] = f32_to_bf16(values[i]);
        write_bytes(halves.data(), (size_t)count * 2);
      } else {
        write_bytes(values.data(), (size_t)count * 4);
      }
      at.bytes_done += dtype_bytes(dtype, count);
      if (begin + count == n) ++at.tensors_done;
      if (progress) progress(at);
    }
  }

  if (::fsync(tmp.fd) != 0) fail(str("cannot write ", path, ": fsync: ", std::strerror(errno)));
  const int rc = ::close(tmp.fd);
  tmp.fd = -1;
  if (rc != 0) fail(str("cannot write ", path, ": close: ", std::strerror(errno)));
  if (::rename(tmp.path.c_str(), path.c_str()) != 0) fail(str("cannot write ", path, ": rename: ", std::strerror(errno)));
  tmp.keep = true;
  // Make the rename itself durable; failure here does not undo a completed write.
  const int dfd = ::open(parent_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return summary;
}

}  // namespace gannet::io
