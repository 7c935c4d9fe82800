// Data parallelism over one process group, with ZeRO stages 0, 1 and 2.
//
// The parameters are grouped into buckets (a transformer block each, plus one for the rest); the
// backward pass reports each block as soon as it has finished its gradients (a marker on the tape),
// and that bucket's reduction starts at once, non-blocking, while the earlier blocks' backward runs.
//   stage 0: gradients all-reduced (on the last micro-batch of a step); AdamW on every rank.
//   stage 1: the same all-reduce; each rank keeps AdamW moments only for its shard, updates its
//            shard of the weights, and the shards are all-gathered.
//   stage 2: gradients reduce-scattered on every micro-batch into this rank's shard (the full
//            gradients of a bucket are released as soon as it is reduced); then as stage 1.
// A bucket of S elements is padded to a multiple of the group size N and split into N equal chunks;
// rank r owns chunk r of every bucket. The collectives move a bucket in tiles (DeepSpeed-TED's
// tiled optimizer step; DeepSpeed's reduce_bucket_size and allgather_bucket_size): an all-reduce
// takes a range of at most `reduce_tile` elements of the padded bucket, a reduce-scatter or
// all-gather the same range of every rank's chunk, at most tile / N elements each. At most two
// tiles are staged in flight, and the optimizer step runs bucket by bucket, so the staging buffers
// (two tiles) are the only temporaries, however large a bucket is (the token embedding's).
// With expert parallelism the experts' weights differ between the ranks of an expert-parallel
// group: their buckets are reduced (and sharded) over the expert-data-parallel group instead, the
// ranks that hold the same experts.
#pragma once
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "gannet/core/tensor.h"
#include "gannet/dist/communicator.h"
#include "gannet/nn/parameter.h"
#include "gannet/optim/adamw.h"

namespace gannet::dist {

// Which bucket each parameter is reduced in, and which buckets a finished block releases.
struct BucketPlan {
  std::vector<int> bucket_of;                // per parameter; buckets numbered from 0, none empty
  std::vector<bool> expert;                  // per bucket: expert weights (expert-data group)
  std::vector<bool> moe_shared;              // per bucket: an MoE layer's router and mixing weights
  std::vector<std::vector<int>> of_block;    // per transformer block: its buckets
};

// Buckets for a GPT-style parameter list: block i's parameters ("h.<i>.*") in one bucket, its
// experts' weights ("h.<i>.moe.experts.*") in another and its MoE router and mixing weights
// ("h.<i>.moe.*") in a third, everything else (embeddings, final LayerNorm) in a last bucket
// reduced after the backward pass.
BucketPlan transformer_buckets(const nn::ParameterList& params, int64_t n_layer);
// Whether a parameter is an expert weight, which expert parallelism spreads over processes.
bool is_expert_parameter(const std::string& name);

class DataParallel {
 public:
  // `data` reduces every bucket but the experts'; `expert_data` (nullptr: `data`) reduces theirs;
  // `expert` (nullptr: none) is the expert-parallel group, whose ranks hold different experts;
  // `tensor` (nullptr: none) the tensor-parallel group, whose ranks hold different slices of the
  // parameters flagged in `tensor_sliced`. These only matter for the clipping norm, which counts
  // every element once. The groups must outlive this object.
  DataParallel(const nn::ParameterList& params, const BucketPlan& plan, Communicator& data, Communicator* expert_data,
               Communicator* expert, int zero_stage, const optim::AdamWOptions& adamw,
               const std::vector<bool>& tensor_sliced = {}, Communicator* tensor = nullptr);
  // Tile sizes in elements (0: whole buckets): for the gradient reductions and for the all-gathers
  // of the step (and of checkpoints). Call before the first micro-batch.
  void set_tiles(int64_t reduce_tile, int64_t gather_tile);
  // Bytes of the staging buffers the collectives go through.
  int64_t staging_bytes() const;
  // Duplicate-token dropping: each tensor-parallel rank's MoE gradients cover its share of the
  // tokens only, so the MoE buckets are reduced over wider groups: the router's over `tensor_data`
  // (every rank), the experts' over `tensor_expert_data`. Call before the first step.
  void reduce_moe_over_tensor_group(Communicator& tensor_data, Communicator& tensor_expert_data);

  int zero_stage() const { return stage_; }
  int buckets() const { return (int)buckets_.size(); }

  // Before micro-batch `micro` (from 0) of a step of `count` micro-batches: stages 0 and 1 zero the
  // gradients on the first and reduce on the last; stage 2 releases them and reduces on every one.
  void begin_micro_batch(int micro, int count);
  // The backward pass has written the final gradients of bucket b (called from the tape).
  void bucket_ready(int b);
  // The same for every bucket of transformer block i.
  void block_done(int64_t block);
  // After the backward pass: reduces the buckets not reduced yet and waits for all of them. Stages
  // 0 and 1 leave in each parameter's gradient the sum over ranks.
  void end_micro_batch();

  // sqrt(sum of squared reduced gradients) * grad_scale, every parameter counted once.
  double grad_norm(float grad_scale);
  // One AdamW update of every parameter (each gradient times grad_scale), identical on every rank.
  void step(float lr, float grad_scale);
  int64_t step_count() const;

  // AdamW moments held by this rank, and its gradient storage kept across micro-batches.
  int64_t optimizer_state_bytes() const;
  int64_t gradient_bytes() const;

  // Stage 0: the AdamW every rank runs, holding all the moments (checkpoints read and write it
  // directly); nullptr for the sharded stages.
  optim::AdamW* replicated_optimizer() { return full_.get(); }
  // For checkpoints (collective): the full moments and step count into `full` (built over the
  // same parameter list), and back from such an optimizer.
  void gather_state(optim::AdamW& full);
  void load_state(optim::AdamW& full);
  // Stages 1 and 2: the AdamW moments this rank holds, as runs of elements [offset, offset +
  // length) of a parameter's (local) data, m and v being views of this rank's chunks. For sharded
  // checkpoints; empty at stage 0 (see replicated_optimizer()).
  struct MomentShard {
    size_t param;
    int64_t offset, length;
    Tensor m, v;
  };
  std::vector<MomentShard> moment_shards() const;

 private:
  struct Segment {        // the part of one parameter inside this rank's chunk of a bucket
    size_t param;
    int64_t param_offset, chunk_offset, length;
  };
  struct Bucket {
    std::vector<size_t> params;  // in parameter order
    std::vector<int64_t> offset; // each parameter's offset in the bucket
    int64_t size = 0, padded = 0, chunk = 0;
    std::vector<Segment> owned;
    Tensor m, v, grad;           // this rank's chunk (stages 1 and 2; grad: stage 2)
    Communicator* group = nullptr;
    bool expert = false;
    bool world_wide = false;  // sharded over a group that spans the tensor-parallel ranks
    std::vector<int64_t> sliced_ranges;  // [begin, end) pairs of the bucket's tensor-sliced elements
    bool launched = false;
  };
  struct InFlight {
    int bucket;
    int slot;
    int64_t lo, hi;  // the tile: a range of the padded bucket (all-reduce) or of each chunk (reduce-scatter)
    std::unique_ptr<Request> request;
  };
  // Elements of each rank's chunk in one chunked collective of bucket b with tile `tile`.
  int64_t chunk_tile(const Bucket& b, int64_t tile) const;

  // Copies bucket elements [lo, hi) between `buf` and the tensors tensor_of(param) (to_buf: into buf,
  // zeros for padding and absent gradients).
  template <class TensorOf>
  void copy_range(const Bucket& b, int64_t lo, int64_t hi, float* buf, bool to_buf, TensorOf tensor_of) const;
  // [c, c + n) of every rank's chunk of bucket b, rank r's at buf + r n (the layout of an all-gather).
  template <class TensorOf>
  void copy_chunk_range(const Bucket& b, int64_t c, int64_t n, float* buf, bool to_buf, TensorOf tensor_of) const;
  void layout_shards();                           // chunks, owned segments and buffers of the buckets
  void launch(int b);
  void launch_tile(int b, int64_t lo, int64_t hi);
  void allocate_staging();
  void complete_oldest();

  nn::ParameterList params_;
  BucketPlan plan_;
  Communicator& data_;
  Communicator* expert_;
  Communicator* tensor_;
  std::vector<bool> tensor_sliced_;  // per parameter
  int stage_;
  optim::AdamWOptions opt_;
  std::unique_ptr<optim::AdamW> full_;  // stage 0
  std::vector<Bucket> buckets_;
  Tensor staging_[2], chunk_out_[2];
  int64_t reduce_tile_ = 0, gather_tile_ = 0;  // elements; 0: whole buckets
  bool slot_busy_[2] = {false, false};
  std::deque<InFlight> in_flight_;
  bool reduce_now_ = false, first_micro_ = true;
  int64_t step_ = 0;
};

}  // namespace gannet::dist
