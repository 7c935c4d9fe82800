// The engine's weights kept on disk and streamed through a ring of buffers (ZeRO-Inference on a
// CPU: RAM is the fast memory, the disk the slow one). At construction each unit (the token
// embedding with the LM head, then every block) is prepared as the in-memory engine prepares it,
// written to an unnamed file in the offload directory, and its source pages dropped, one unit at
// a time, so that memory never holds more than a unit beside the ring. At run time a reader
// thread reads the units ahead in the order a pass uses them (infer/weight_stream.h); each unit
// has, per slot of the ring, a copy of its LinearWeights pointing into that slot, so a streamed
// layer runs on exactly the kernels and bytes of the in-memory one (bitwise equal outputs).
//
// A pass acquires the head (embedding rows), releases it, acquires and releases each block in
// turn, then acquires the head for the logits and holds it until the next pass's embedding: the
// head is read once per pass. An MoE block's experts lie at the end of its unit: the reader reads
// the rest ahead, and the pass reads the experts its tokens route to (load_experts), on its own
// thread, once routing has chosen them; experts no token chose are never read.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gannet/infer/engine_weights.h"
#include "gannet/infer/weight_stream.h"

namespace gannet::infer {

struct StreamOptions {
  int64_t max_resident_bytes = 0;  // the ring: at least two of the largest unit
  std::string dir = ".";           // where the prepared weights are written (a disk, not tmpfs)
};

class StreamedWeights {
 public:
  StreamedWeights(const io::GptWeights& weights, const EngineWeightBuilder& builder, const StreamOptions& options);

  // The head, acquired if the last pass did not leave it held.
  const HeadWeights& head();
  void release_head();
  const Layer& layer(int64_t l);
  void release_layer(int64_t l);
  // Block l (acquired, an MoE block): reads the listed experts into its slot unless already there.
  void load_experts(int64_t l, const std::vector<int64_t>& experts);

  // The copies for the first slot: the units' shapes and formats, whatever slot they run from.
  const HeadWeights& head_shapes() const { return heads_[0]; }
  const std::vector<Layer>& layer_shapes() const { return layers_[0]; }

  int64_t slots() const { return stream_->slots(); }
  int64_t slot_bytes() const { return stream_->slot_bytes(); }
  // Bytes one pass reads from disk at least (every unit once, an MoE block without its experts),
  // when the ring holds fewer than all units; 0 when it holds them all.
  int64_t bytes_per_pass() const { return bytes_per_pass_; }
  int64_t bytes_read() const { return stream_->bytes_read(); }
  double read_seconds() const { return stream_->read_seconds(); }
  int64_t file_bytes() const { return file_bytes_; }
  double wait_seconds() const { return stream_->wait_seconds(); }
  double measure_read_gbps(int64_t bytes) { return stream_->measure_read_gbps(bytes); }

 private:
  std::unique_ptr<WeightStream> stream_;
  std::vector<HeadWeights> heads_;           // [slot]
  std::vector<std::vector<Layer>> layers_;   // [slot][layer]
  int64_t head_slot_ = -1;                   // the head's slot while held
  int64_t layer_slot_ = -1;                  // the slot of the block acquired last
  int64_t bytes_per_pass_ = 0, file_bytes_ = 0;
  std::vector<int64_t> unit_offset_;         // each unit's place in the file
  // Per slot: the experts read into it (valid while the slot holds unit loaded_unit_ from the
  // reader's read number loaded_generation_).
  std::vector<std::vector<char>> loaded_;
  std::vector<int64_t> loaded_unit_, loaded_generation_;
};

}  // namespace gannet::infer
