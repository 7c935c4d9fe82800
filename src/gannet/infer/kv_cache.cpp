#include "gannet/infer/kv_cache.h"

#include <sys/mman.h>

#include <cstdlib>

#include "gannet/core/error.h"

namespace gannet::infer {

KvCache::KvCache(int64_t n_layer, int64_t n_seq, int64_t n_head, int64_t head_dim, int64_t context)
    : n_layer_(n_layer),
      n_seq_(n_seq),
      n_head_(n_head),
      head_dim_(head_dim),
      ctx_(context),
      plane_(head_dim * context),
      floats_((size_t)(n_layer * n_seq * n_head) * 2 * (size_t)plane_),
      data_(nullptr, &std::free),
      length_(n_seq, 0) {
  GANNET_CHECK(n_layer > 0 && n_seq > 0 && n_head > 0 && head_dim > 0 && context > 0,
               "KV cache: sizes must be positive (layers ", n_layer, ", sequences ", n_seq, ", heads ", n_head,
               ", head_dim ", head_dim, ", context ", context, ")");
  // Huge pages: a decode step reads every head's keys a component (one cache row) at a time.
  constexpr size_t kHuge = size_t(2) << 20;
  size_t bytes = (floats_ * sizeof(float) + kHuge - 1) / kHuge * kHuge;
  data_.reset(static_cast<float*>(std::aligned_alloc(kHuge, bytes)));
  GANNET_CHECK(data_ != nullptr, "KV cache: cannot allocate ", bytes >> 20, " MiB (", n_seq,
               " sequences x ", context, " tokens); lower the sequences or the context");
  madvise(data_.get(), bytes, MADV_HUGEPAGE);
}

void KvCache::store(int64_t seq, int64_t layer, int64_t head, int64_t pos, const float* k, const float* v) const {
  float* kt = keys(seq, layer, head) + pos;
  float* vr = values(seq, layer, head) + pos * head_dim_;
  for (int64_t d = 0; d < head_dim_; ++d) {
    kt[d * ctx_] = k[d];
    vr[d] = v[d];
  }
}

}  // namespace gannet::infer
