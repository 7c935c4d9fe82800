// The inference engine: a GPT's weights prepared once at load (layout and precision chosen for the
// kernels), a preallocated KV cache for a fixed number of sequences, a prefill path on GEMMs and
// a decode path of fused, memory-bandwidth-bound matrix-vector products. No autograd, and no
// allocation per token: every buffer is sized at construction for max_sequences x max_context.
//
// A "sequence" is a slot of the KV cache. forward() appends tokens to slots and returns the logits
// of each chunk's last token, so one call can prefill one prompt, decode one token for each of
// several sequences (continuous batching), or both. A sequence's results do not depend on what
// else is in the call: decode rows are computed independently (bitwise equal to decoding alone).
//
// forward(), forward_all() and reset() are for one caller at a time (the server's scheduler
// thread). config(), options(), vocab_size(), max_sequences() and max_context() never change after
// construction and may be read from any thread meanwhile.
//
// Weights: every matrix is packed for the decode kernel (kernels/skinny_matmul.h) in f32 or bf16;
// each LayerNorm's scale and shift are folded into the product that follows it (ln_1 into c_attn,
// ln_2 into c_fc); the LM head is the packed token embedding, whose rows also serve the lookup.
// They are prepared unit by unit (infer/engine_weights.h) and kept in memory, or, with
// offload_disk, written to disk and streamed back through a ring of buffers each pass
// (infer/streamed_weights.h): the same kernels on the same bytes, so the logits are bitwise equal.
// Streaming, all decode rows of a forward() go in one pass, run through each layer in groups of
// at most LinearWeight::kSkinnyMaxRows rows, so that each streamed layer serves the whole batch.
//
// Mixture-of-Experts blocks (GPT-MoE, models::GptConfig::moe) run with top_k routing only, and
// dropless: ln_2 stays unfolded (its output feeds the router, the experts and, for PR-MoE, the
// dense MLP and the mixing coefficient); the router (kept in f32 whatever the format) gives each
// row its k experts and gates (normalized over the k when k > 1, as in training); the rows of the
// pass are grouped by expert (kernels::route_top_k with no capacity) and each expert's block runs
// through that expert's two products; the outputs are combined by gate into the residual stream.
// Every row keeps its k experts, so an MoE block's output for a row depends on that row alone:
// decode rows stay bitwise independent of the rest of the pass (an expert gets at most as many
// rows as the pass, at most LinearWeight::kSkinnyMaxRows in decode, so every product runs on the
// skinny kernel, which computes each row alone; routing, gates and the combine are per row). A
// model trained with drop_tokens (a capacity per expert) may drop tokens in its own evaluation
// forward; the engine never does, so the two agree only where training dropped nothing.
// Expert-choice routing is refused (an expert picks among all tokens of a batch: not causal). In a
// quantized MoE model each expert tensor is one quantized [E * out, in] matrix; expert e runs on
// its rows [e * out, (e + 1) * out), packed for the integer kernels like any quantized product
// (int8 inputs quantized token-wise from the gathered rows); the router and coefficient stay f32.
// The routing kernel allocates its small index lists per pass.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "gannet/io/gpt_weights.h"
#include "gannet/models/gpt.h"

namespace gannet::dist {
class Communicator;
}

namespace gannet::infer {

enum class WeightFormat { f32, bf16 };
const char* weight_format_name(WeightFormat f);
// "f32" / "bf16"; throws gannet::Error on anything else.
WeightFormat parse_weight_format(const std::string& name);

struct EngineOptions {
  WeightFormat weights = WeightFormat::f32;
  int64_t max_sequences = 1;  // KV-cache slots
  int64_t max_context = 0;    // tokens per slot; 0 = the model's n_ctx (and never more than it)
  // Weight streaming (ZeRO-Inference, infer/streamed_weights.h): the prepared weights kept on disk
  // in offload_dir and read ahead, unit by unit, into a ring of at most max_resident_bytes.
  bool offload_disk = false;
  int64_t max_resident_bytes = 0;
  std::string offload_dir = ".";
  // Tensor-parallel inference (Megatron layout, infer/engine_weights.h's TensorSlice) over this
  // group, when it has more than one rank: every rank builds an engine with the same options and
  // makes the same calls; each holds its heads, its MLP columns and its rows of the vocabulary;
  // two all-reduces per block, one for the embedding, an all-gather for the logits, which every
  // rank then holds whole. An MoE block's experts are split over the ranks, by hidden units or
  // whole (expert_parallel: each rank holds E/t experts and runs them on the rows routed to them);
  // either way the combined outputs are summed over the group (every rank holds every row, so no
  // all-to-all is needed); its router and PR-MoE's dense MLP stay whole on every rank. Models: float, or quantized with float or symmetric int8 inputs
  // (a row-parallel product's token scales come from an all-reduced maximum of each row, so its
  // integers are one process's; c_fc's fused GELU quantization is not used then).
  dist::Communicator* tensor_parallel = nullptr;
  // With tensor_parallel: rank 0 alone is driven by its caller (a server's scheduler) and sends
  // each forward(), forward_all() and reset() to the other ranks first; they run follow() until
  // rank 0's engine is destroyed. Without it every rank makes the same calls itself.
  bool lead_followers = false;
  // With tensor_parallel, an MoE model's experts: false, each expert's hidden units split over the
  // ranks like the MLP's (every rank reads 1/N of each routed expert); true, expert parallelism
  // (each rank holds E/N experts whole and runs them on the rows routed to them).
  bool expert_parallel = false;
};

// Tokens to append to one sequence.
struct Chunk {
  int64_t seq = 0;
  std::span<const int32_t> tokens;
};

class Engine {
 public:
  // Prepares the weights (copies or converts them; the source may be released afterwards).
  Engine(const io::GptWeights& weights, const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const models::GptConfig& config() const;
  const EngineOptions& options() const;
  int64_t vocab_size() const { return config().vocab_size; }
  int64_t max_sequences() const { return options().max_sequences; }
  int64_t max_context() const;

  // Tokens held in the cache of sequence `seq`.
  int64_t length(int64_t seq) const;
  // Empties sequence `seq` (its cache is reused by the next forward).
  void reset(int64_t seq);

  // Appends each chunk's tokens to its sequence and writes the logits of the chunk's last token to
  // logits + i * vocab_size() (logits: [chunks.size(), vocab]). Chunks must name distinct
  // sequences, be non-empty and fit: length(seq) + tokens.size() <= max_context(); otherwise
  // gannet::Error is thrown and no cache is changed. Token ids are checked against the vocabulary.
  void forward(std::span<const Chunk> chunks, float* logits);
  // As forward() for one chunk, writing the logits of every token ([tokens.size(), vocab]).
  void forward_all(const Chunk& chunk, float* logits);

  // lead_followers, on ranks other than 0: runs the calls rank 0 makes, as rank 0 sends them,
  // until rank 0's engine is destroyed. Throws gannet::Error when called anywhere else.
  void follow();

  // Streaming only (zeros otherwise): the ring's slots and the bytes of each, the bytes a pass reads
  // from disk (0 when the ring holds every unit: each is read once), the bytes read so far, the
  // seconds the reader spent reading them, the seconds passes waited for a unit, and the bytes of
  // the streamed file (every unit whole, experts included).
  struct StreamStats {
    int64_t slots = 0, slot_bytes = 0, bytes_per_pass = 0, bytes_read = 0;
    int64_t file_bytes = 0;
    double read_seconds = 0, wait_seconds = 0;
  };
  StreamStats stream_stats() const;
  // Streaming only: the disk's sequential direct-I/O read rate in GB/s over `bytes` of the
  // streamed file, measured now (once the read-ahead is done).
  double measure_disk_read_gbps(int64_t bytes);

  // Bytes of weights one decode step reads (all layer matrices and the LM head; the embedding rows
  // of the new tokens are negligible): the numerator of the memory-bandwidth bound. An MoE block
  // counts its router and k experts, what one row reads; a step of several rows reads up to
  // min(E, rows * k) experts, so for a batch this is the least the step can read.
  int64_t weight_bytes_per_step() const;
  // Forward FLOPs (matrix products and attention) to process one token at position `pos`, without
  // the LM head when !with_head: the numerator of the FLOP bound. An MoE block counts its router
  // and k experts (and the dense MLP and coefficient of PR-MoE).
  double flops_per_token(int64_t pos, bool with_head) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gannet::infer
