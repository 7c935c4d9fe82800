// A random group-wise quantized weight matrix and its packed form (kernels/quant_matmul.h), for
// the integer products' tests.
#pragma once
#include <cstdlib>
#include <memory>
#include <vector>

#include "gannet/core/rng.h"
#include "gannet/kernels/quant_matmul.h"

namespace gannet::testing {

// A random group-wise quantized matrix and its packed form, owning their storage.
struct QMatrix {
  std::vector<int8_t> q, zero;
  std::vector<float> scale;
  std::shared_ptr<uint8_t> packed;
  kernels::QuantizedWeights w;
  kernels::QPackedMatrix p;

  QMatrix(int bits, int64_t N, int64_t K, int64_t group, bool asym, uint64_t seed, float unit_scale = 0.f) {
    Rng rng(seed);
    const int lo = bits == 8 ? (asym ? -128 : -127) : (asym ? -8 : -7), hi = bits == 8 ? 127 : 7;
    auto draw = [&] { return lo + (int)rng.below(hi - lo + 1); };
    const int64_t groups = K / group;
    q.assign(bits == 8 ? N * K : N * K / 2, 0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < K; ++c) {
        const int v = draw();
        if (bits == 8)
          q[n * K + c] = (int8_t)v;
        else
          q[(n * K + c) / 2] |= (int8_t)((c % 2 == 0) ? (v & 0x0F) : (v & 0x0F) << 4);
      }
    scale.resize(N * groups);
    for (float& s : scale) s = unit_scale > 0.f ? unit_scale : 0.01f + 0.02f * rng.uniform();
    if (asym) {
      zero.resize(N * groups);
      for (int8_t& z : zero) z = (int8_t)draw();
    }
    w = {bits, N, K, group, q.data(), scale.data(), asym ? zero.data() : nullptr};
    const int64_t bytes = kernels::qpacked_bytes(w);
    packed.reset(static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64)), std::free);
    kernels::pack_quantized(w, packed.get());
    p = kernels::qpacked_view(w, packed.get());
  }
};

}  // namespace gannet::testing
