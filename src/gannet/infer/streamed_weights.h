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
// head is read once per pass.
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

  // The copies for the first slot: the units' shapes and formats, whatever slot they run from.
  const HeadWeights& head_shapes() const { return heads_[0]; }
  const std::vector<Layer>& layer_shapes() const { return layers_[0]; }

  int64_t slots() const { return stream_->slots(); }
  int64_t slot_bytes() const { return stream_->slot_bytes(); }
  // Bytes one pass reads from disk (every unit once), when the ring holds fewer than all units.
  int64_t bytes_per_pass() const { return bytes_per_pass_; }
  int64_t bytes_read() const { return stream_->bytes_read(); }
  double read_seconds() const { return stream_->read_seconds(); }
  double wait_seconds() const { return stream_->wait_seconds(); }
  double measure_read_gbps(int64_t bytes) { return stream_->measure_read_gbps(bytes); }

 private:
  std::unique_ptr<WeightStream> stream_;
  std::vector<HeadWeights> heads_;           // [slot]
  std::vector<std::vector<Layer>> layers_;   // [slot][layer]
  int64_t head_slot_ = -1;                   // the head's slot while held
  int64_t bytes_per_pass_ = 0;
};

}  // namespace gannet::infer
