// The KV cache: for every sequence slot, layer and head, the keys in blocks of 16 positions
// (kernels/cached_attention.h: each block [head_dim][16], so that decode attention computes many
// scores per vector instruction and reads a head's keys as one contiguous run) and the values as
// rows ([context][head_dim]). Allocated once; pages are touched only as
// sequences grow into them.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

namespace gannet::infer {

class KvCache {
 public:
  KvCache(int64_t n_layer, int64_t n_seq, int64_t n_head, int64_t head_dim, int64_t context);

  int64_t sequences() const { return n_seq_; }
  int64_t context() const { return ctx_; }
  int64_t length(int64_t seq) const { return length_[seq]; }
  void set_length(int64_t seq, int64_t n) { length_[seq] = n; }

  // Kb[kernels::key_index(j, d, head_dim)]: component d of key j.
  float* keys(int64_t seq, int64_t layer, int64_t head) const { return base(seq, layer, head); }
  // V[j * head_dim + d].
  float* values(int64_t seq, int64_t layer, int64_t head) const { return base(seq, layer, head) + key_plane_; }

  // Stores the key and value of position `pos` (k, v: head_dim floats each).
  void store(int64_t seq, int64_t layer, int64_t head, int64_t pos, const float* k, const float* v) const;

  int64_t bytes() const { return (int64_t)(floats_ * sizeof(float)); }

 private:
  float* base(int64_t seq, int64_t layer, int64_t head) const {
    return data_ + ((seq * n_layer_ + layer) * n_head_ + head) * (key_plane_ + value_plane_);
  }
  int64_t n_layer_, n_seq_, n_head_, head_dim_, ctx_, key_plane_, value_plane_;
  size_t floats_;
  std::shared_ptr<void> owner_;
  float* data_ = nullptr;
  std::vector<int64_t> length_;
};

}  // namespace gannet::infer
