#include "gannet/infer/kv_cache.h"

#include "gannet/core/error.h"
#include "gannet/core/huge_pages.h"
#include "gannet/kernels/cached_attention.h"

namespace gannet::infer {

KvCache::KvCache(int64_t n_layer, int64_t n_seq, int64_t n_head, int64_t head_dim, int64_t context)
    : n_layer_(n_layer),
      n_seq_(n_seq),
      n_head_(n_head),
      head_dim_(head_dim),
      ctx_(context),
      key_plane_(kernels::key_plane(context, head_dim)),
      value_plane_(context * head_dim),
      floats_((size_t)(n_layer * n_seq * n_head) * (size_t)(key_plane_ + value_plane_)),
      length_(n_seq, 0) {
  GANNET_CHECK(n_layer > 0 && n_seq > 0 && n_head > 0 && head_dim > 0 && context > 0,
               "KV cache: sizes must be positive (layers ", n_layer, ", sequences ", n_seq, ", heads ", n_head,
               ", head_dim ", head_dim, ", context ", context, ")");
  // Huge pages: a decode step reads every head's keys and values of every layer.
  owner_ = allocate_huge_pages(floats_ * sizeof(float),
                               str("the KV cache (", n_seq, " sequences x ", context, " tokens; lower either)"));
  data_ = static_cast<float*>(owner_.get());
}

void KvCache::store(int64_t seq, int64_t layer, int64_t head, int64_t pos, const float* k, const float* v) const {
  float* kb = keys(seq, layer, head);
  float* vr = values(seq, layer, head) + pos * head_dim_;
  for (int64_t d = 0; d < head_dim_; ++d) {
    kb[kernels::key_index(pos, d, head_dim_)] = k[d];
    vr[d] = v[d];
  }
}

}  // namespace gannet::infer
