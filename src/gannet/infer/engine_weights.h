// The inference engine's prepared weights (infer/engine.h), unit by unit: the token embedding and
// LM head, each block, and the small resident tensors (position embedding, final LayerNorm). A
// builder lays each unit out in a WeightArena, so that a unit is one contiguous block of bytes:
// the engine keeps them all in one arena in memory, or writes each block to disk and streams it
// back (infer/streamed_weights.h), its LinearWeights rebased onto the buffer it was read into.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gannet/core/tensor.h"
#include "gannet/infer/linear_weight.h"
#include "gannet/io/gpt_weights.h"

namespace gannet::infer {

// Bytes a tensor of n elements takes in an arena (rounded up to 64 for alignment).
size_t arena_bytes(DType t, int64_t n);
// The alignment of each expert's block in an MoE block's unit (that of direct I/O).
constexpr int64_t kExpertAlign = 4096;

// Tensors carved one after another out of one block of memory.
class WeightArena {
 public:
  WeightArena(std::shared_ptr<void> owner, size_t bytes);
  Tensor take(const Shape& shape, DType dtype);
  // Skips to the next multiple of `alignment` bytes from the base.
  void align(size_t alignment);
  char* base() const { return static_cast<char*>(owner_.get()); }
  size_t used() const { return used_; }

 private:
  std::shared_ptr<void> owner_;
  size_t size_ = 0, used_ = 0;
};

struct Layer {
  // fc, out: the dense MLP; absent in an MoE block without use_residual. Float: ln_1 folded into
  // qkv, ln_2 into fc (except in an MoE block, see below).
  LinearWeight qkv, proj, fc, out;
  Tensor ln1_g, ln1_b, ln2_g, ln2_b;  // what remains of the LayerNorms at run time (ones/zeros when folded)
  // An MoE block (experts > 0) keeps ln_2 unfolded: its output feeds the router, every expert and
  // (use_residual) the dense MLP and the mixing coefficient.
  int64_t experts = 0;
  bool residual = false;                            // PR-MoE: softmax(coef)[0] * moe + softmax(coef)[1] * mlp
  LinearWeight gate;                                // router [E, C], f32 whatever the format, no bias
  std::vector<LinearWeight> expert_fc, expert_out;  // per expert: [4C, C] (GELU), [C, 4C]
  LinearWeight coef;                                // use_residual: [2, C]
  // Where the experts lie in the unit, each expert's two products (bias, then matrix) in one block:
  // expert e at experts_offset + e * expert_stride from the unit's start, both multiples of
  // kExpertAlign, after everything else the block holds (so a stream can read the rest alone and
  // then only the experts a pass routes to).
  int64_t experts_offset = 0, expert_stride = 0;
  bool has_mlp() const { return experts == 0 || residual; }
};

struct HeadWeights {
  LinearWeight embed;  // wte [V, C]: the token embedding's rows (and the tied LM head)
  LinearWeight head;   // the LM head: embed, or lm_head.weight when quantized apart
};

struct ResidentTensors {
  Tensor wpe;           // [ctx, C] f32
  Tensor lnf_g, lnf_b;  // [C] f32
};

// A copy of a unit's weights whose tensors moved with their bytes: every tensor inside
// [from, from + bytes) now at the same offset from `to` (owned by `owner`). Throws on a tensor
// outside the block.
using Relocation = std::function<Tensor(const Tensor&)>;
Relocation relocation(const char* from, size_t bytes, char* to, std::shared_ptr<void> owner);
Layer relocated(const Layer& layer, const Relocation& move);
HeadWeights relocated(const HeadWeights& head, const Relocation& move);

// This rank's share of a tensor-parallel engine (Megatron layout) over `size` ranks: c_attn's
// rows of its heads in each of Q, K and V, and c_fc's rows of its hidden units (column-parallel);
// the columns of both c_proj that read them (row-parallel; the bias on rank 0 only, the others'
// zero, so that the sum over ranks adds it once); the token table's rows [rank Vl, (rank + 1) Vl)
// with Vl = ceil(V / size), zero rows past V (vocabulary-parallel embedding and LM head).
struct TensorSlice {
  int rank = 0, size = 1;
  // An MoE block's experts: false, each expert's hidden units split like the MLP's (c_fc's rows,
  // c_proj's columns: every rank reads 1/size of every routed expert); true, expert parallelism
  // (rank r holds experts [r E/size, (r + 1) E/size) whole, the others' left empty).
  bool whole_experts = false;
  int64_t vocab_rows(int64_t V) const { return (V + size - 1) / size; }
};

// Prepares a GPT's weights for the engine: float matrices packed for the decode kernel in `ptype`
// with LayerNorms folded in where they can be; quantized ones packed for the integer kernels.
// With a tensor slice of more than one rank, this rank's share of a model (an MoE block's experts
// [rank E/t, (rank + 1) E/t), the others left empty LinearWeights): float, or
// quantized with float or symmetric int8 inputs (c_proj's columns cut on its groups; the token
// table's rows with their scales).
class EngineWeightBuilder {
 public:
  EngineWeightBuilder(const io::GptWeights& weights, kernels::PackedType ptype, TensorSlice slice = {});
  int64_t layers() const { return cfg_.n_layer; }

  size_t head_bytes() const;
  size_t layer_bytes(int64_t l) const;
  size_t resident_bytes(int64_t ctx) const;
  HeadWeights head(WeightArena& arena) const;
  Layer layer(int64_t l, WeightArena& arena) const;
  ResidentTensors resident(int64_t ctx, WeightArena& arena) const;

 private:
  const io::GptWeights& w_;
  const models::GptConfig& cfg_;
  int64_t C_;
  kernels::PackedType ptype_;
  DType wtype_;
  TensorSlice slice_;

  // Bytes of a [rows, cols] share of a matrix of `in` columns as prepared: quantized as q, or float.
  size_t prepared_bytes(const io::QuantizedTensor* q, int64_t in, int64_t rows, int64_t cols) const;
  // Bytes of a [rows, cols] share of the weight `name` [out, in] as prepared.
  size_t share_bytes(const std::string& name, int64_t out, int64_t in, int64_t rows, int64_t cols) const;
  // This slice's row ranges of a column-parallel [out, *] matrix made of `parts` blocks.
  std::vector<std::pair<int64_t, int64_t>> slice_rows(int64_t out, int64_t parts) const;
  // The entries `rows` of the vector `name` [n], in order.
  Tensor rows_of(WeightArena& a, const std::string& name, int64_t n,
                 const std::vector<std::pair<int64_t, int64_t>>& rows) const;
  // Bytes of a [rows, cols] share of one expert's [out, in] matrix of expert tensor `name`.
  size_t expert_bytes(const std::string& name, int64_t E, int64_t out, int64_t in, int64_t rows, int64_t cols) const;
  // Expert e's products as this slice holds them (empty when another rank holds it whole).
  void add_expert(WeightArena& a, const std::string& p, int64_t E, int64_t e, const Tensor& fc_all,
                  const Tensor& out_all, const std::vector<float>& b1, const std::vector<float>& b2, Layer& y) const;
  Tensor vector(WeightArena& a, const std::string& name, int64_t n) const;
  Tensor constant(WeightArena& a, int64_t n, float value) const;
  LinearWeight quantized(WeightArena& a, const std::string& name, const io::QuantizedTensor& q, Tensor bias) const;
  LinearWeight matrix_as(WeightArena& a, kernels::PackedType pt, const float* values, int64_t out, int64_t in,
                         Tensor bias) const;
  // `parts`: the row blocks a tensor slice takes its share of each of (3 for c_attn's Q, K, V).
  LinearWeight normed(WeightArena& a, const std::string& p, const std::string& ln, int64_t out, Tensor& gamma,
                      Tensor& beta, int64_t parts = 1) const;
  LinearWeight plain(WeightArena& a, const std::string& p, int64_t out, int64_t in) const;
  // Columns [k0, k0 + cols) of quantized weight `name`, which must be whole groups (else an error).
  io::QuantizedTensor column_share(const io::QuantizedTensor& q, const std::string& name, int64_t k0,
                                   int64_t cols) const;
  // A c_proj of a tensor slice: its share of the columns, the bias on rank 0.
  LinearWeight row_parallel(WeightArena& a, const std::string& p, int64_t out, int64_t in) const;
  // `start`: where the block's unit began in the arena.
  void moe_block(WeightArena& a, size_t start, const std::string& h, int64_t E, Layer& y) const;
};

// Asks the kernel to drop from memory the pages of the model file behind the weights of one unit
// (names starting with `prefix`, or exactly `prefix` when exact): once a unit is prepared its
// source is not read again. Contents are kept (MADV_PAGEOUT: a mapped file's pages are read back
// on a later access; anonymous memory stays). Best effort.
void release_source_pages(const io::GptWeights& weights, const std::string& prefix, bool exact);

}  // namespace gannet::infer
