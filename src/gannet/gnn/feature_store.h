// Node features as mini-batch training reads them: the rows of a batch's input nodes, gathered.
// RawFeatureStore holds the f32 matrix (memory-mapped from the data set); BiFeatStore holds it
// compressed by BiFeat (gnn/bifeat_compress.h writes its file) and decodes inside the gather.
//
// The BiFeat file (features.bifeat.safetensors, format "gannet.bifeat" version 2; version 1 files,
// which have f32 codebooks and no pq_codebook_bits, are read too):
//   sq_nodes       I64 [ceil(N / 64)]   node map: bit v % 64 of word v / 64 set = node v in the SQ
//                                       level (bits at or above N are 0); a node's row in its
//                                       level is its rank among that level's nodes
//   sq_log2_range  F32 [D, 2]           per column (lo, step) of gnn/log_scalar_quantizer.h
//   sq_codes       U8  [N_sq, D or ceil(D / 2)]   8- or 4-bit log-SQ codes, N_sq = set bits
//   pq_codebooks   F32 [M, K, D / M]    gnn/product_quantizer.h, K <= 256; with pq_codebook_bits 8:
//                  I8  [M, K, D / M]    values in [-127, 127], times
//   pq_codebook_scales F32 [M, D / M]   (8-bit only) the scale of each column of each sub-space
//   pq_codes       U8  [N - N_sq, M]
//   metadata: format, version, num_nodes, dim, sq_bits, pq_subvectors, pq_centroids,
//   pq_codebook_bits (32 or 8; checked when read) and, for the record, sq_fraction, importance,
//   kmeans_iters, kmeans_sample, seed.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gannet/core/tensor.h"
#include "gannet/gnn/bifeat_decode.h"
#include "gannet/gnn/graph_dataset.h"
#include "gannet/gnn/log_scalar_quantizer.h"
#include "gannet/gnn/product_quantizer.h"
#include "gannet/io/safetensors.h"

namespace gannet::gnn {

class FeatureStore {
 public:
  virtual ~FeatureStore() = default;
  virtual int64_t num_nodes() const = 0;
  virtual int64_t dim() const = 0;
  // Every byte the store keeps to answer gathers: its (mapped) file or matrix and what it built.
  virtual int64_t bytes() const = 0;
  // out[i * dim() ..] = the features of node nodes[i], i in [0, n), on the kernels' threads.
  // Throws naming the first node id outside [0, num_nodes()) before writing anything.
  virtual void gather(const int32_t* nodes, int64_t n, float* out) const = 0;
};

class RawFeatureStore : public FeatureStore {
 public:
  explicit RawFeatureStore(Tensor features);  // f32 [N, D], possibly memory-mapped
  int64_t num_nodes() const override { return features_.dim(0); }
  int64_t dim() const override { return features_.dim(1); }
  int64_t bytes() const override { return (int64_t)features_.nbytes(); }
  void gather(const int32_t* nodes, int64_t n, float* out) const override;

 private:
  Tensor features_;
};

class BiFeatStore : public FeatureStore {
 public:
  static constexpr const char* kFormat = "gannet.bifeat";
  static constexpr const char* kVersion = "2";

  // Maps the file and checks all of it (shapes, dtypes, metadata, node map, code ranges, finite
  // codebooks and ranges); every problem is one gannet::Error naming the file and what is wrong.
  static BiFeatStore open(const std::string& path);
  // Move-only: tables() points into the store's own arrays, which a move hands over intact.
  BiFeatStore(BiFeatStore&&) = default;
  BiFeatStore& operator=(BiFeatStore&&) = default;
  BiFeatStore(const BiFeatStore&) = delete;
  BiFeatStore& operator=(const BiFeatStore&) = delete;

  int64_t num_nodes() const override { return tables_.num_nodes; }
  int64_t dim() const override { return tables_.dim; }
  int64_t bytes() const override;
  void gather(const int32_t* nodes, int64_t n, float* out) const override;

  // Resident bytes by part; they add up to bytes().
  struct Bytes {
    int64_t sq = 0;     // SQ codes, ranges, magnitude table
    int64_t pq = 0;     // PQ codes, codebooks (and their scales)
    int64_t map = 0;    // node bitmap and its rank table
    int64_t other = 0;  // the file's header and alignment
  };
  Bytes bytes_by_part() const;
  int64_t sq_rows() const { return sq_codes_.dim(0); }
  int64_t pq_rows() const { return pq_codes_.dim(0); }
  bool in_sq_level(int64_t node) const { return (tables_.sq_mask[node >> 6] >> (node & 63)) & 1; }
  const LogScalarQuantizer& sq() const { return sq_; }
  // A quantizer over the file's codebooks (a copy: for reference decodes, not for the gather);
  // 8-bit codebooks come back as their f32 values (gnn/product_quantizer.h's dequantize_codebooks).
  ProductQuantizer pq() const;
  const std::string& path() const { return file_.path(); }
  const std::map<std::string, std::string>& metadata() const { return file_.metadata(); }
  const BiFeatTables& tables() const { return tables_; }

 private:
  BiFeatStore(io::SafeTensors file, LogScalarQuantizer sq) : file_(std::move(file)), sq_(std::move(sq)) {}
  io::SafeTensors file_;
  Tensor sq_nodes_, sq_codes_, pq_codebooks_, pq_scales_, pq_codes_;  // pq_scales_: 8-bit codebooks only
  LogScalarQuantizer sq_;
  std::vector<uint32_t> sq_rank_;  // [words]: set bits in the words before
  int64_t file_bytes_ = 0;
  BiFeatTables tables_;
};

// The file `graph compress` writes by default: <data dir>/features.bifeat.safetensors.
std::string default_bifeat_path(const std::string& data_dir);

// The store a training config or --features names for data set `data`: "raw" (its f32 matrix),
// "bifeat" (default_bifeat_path(data.dir)) or the path of a BiFeat file. Throws unless the store
// has the data set's node count and feature dimension.
std::unique_ptr<FeatureStore> open_feature_store(const GraphDataset& data, const std::string& features);

}  // namespace gannet::gnn
