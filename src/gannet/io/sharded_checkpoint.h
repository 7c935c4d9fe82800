// Sharded checkpoints: each process writes the part of the training state it owns into a shard
// file of its own (safetensors), and one manifest.json says, for every whole tensor, which pieces
// make it up: the shard file, the tensor's name inside it, and where the piece goes in the whole
// tensor. The mapping is explicit, so a reader reassembles whole tensors without knowing how the
// writer was parallelized (any layout, or one process, reads any sharded checkpoint).
//
// A checkpoint directory (by default <out_dir>/checkpoint):
//   manifest.json                          written last; the checkpoint exists once it is there
//   step-00000006-3f9a2c1b/rank-00000.safetensors   one save's shards, in a directory of their own
//   step-00000006-3f9a2c1b/rank-00003.safetensors
// The manifest (format "gannet-sharded-checkpoint", version 1):
//   {"format": "gannet-sharded-checkpoint", "version": 1,
//    "model_config": {...},                       as in a model file's metadata
//    "layout": {"world": 4, "tensor": 1, "expert": 2, "data": 4, "zero_stage": 2},  the writer's
//    "train_state": {"step": 6, "optim_step": 6, "rng": [u64 x 4], "train_config": "..."},
//    "shards": [{"file": "step-.../rank-00000.safetensors", "rank": 0, "bytes": 123456}, ...],
//    "tensors": [{"name": "h.1.moe.experts.c_fc.weight", "dtype": "F32", "shape": [4, 64, 16],
//                 "pieces": [{"file": "step-.../rank-00000.safetensors", "name": "h.1.moe.experts.c_fc.weight",
//                             "box": [[0, 2], [0, 64], [0, 16]], "flat": [0, 2048]}, ...]}, ...]}
// A piece covers elements [flat[0], flat[1]) of the box (a [begin, end) range per dimension of the
// whole tensor) taken in row-major order; "flat" absent means the whole box. Its stored tensor
// holds exactly those elements, in that order. Tensors are the parameters under their names and
// the AdamW moments "optim.m.<name>", "optim.v.<name>" (as in a whole-file checkpoint).
// Readers check that every element of every tensor is covered exactly once, that the shapes agree
// and that every shard file is present with the size the manifest records.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gannet/core/tensor.h"
#include "gannet/io/checkpoint.h"
#include "gannet/models/gpt.h"

namespace gannet::io {

inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr int kShardedCheckpointVersion = 1;

// Where a piece goes in its whole tensor: elements [flat_begin, flat_end) of `box` in row-major
// order (box: one [begin, end) per dimension).
struct PiecePlace {
  std::vector<std::pair<int64_t, int64_t>> box;
  int64_t flat_begin = 0, flat_end = 0;
  int64_t numel() const { return flat_end - flat_begin; }
  bool operator==(const PiecePlace&) const = default;
};
// The whole box of a tensor of `shape`.
PiecePlace whole_place(const Shape& shape);

struct ManifestPiece {
  std::string file;  // relative to the manifest's directory
  std::string name;  // the tensor's name inside the shard file
  PiecePlace place;
};

struct ManifestTensor {
  std::string name;
  Shape shape;
  std::vector<ManifestPiece> pieces;
};

struct ShardFile {
  std::string file;  // relative to the manifest's directory
  int rank = 0;
  int64_t bytes = 0;
};

// The writer's parallel layout (for reference and messages; readers do not depend on it).
struct ShardedLayout {
  int world = 1, tensor = 1, expert = 1, data = 1, zero_stage = 0;
};

struct Manifest {
  int version = kShardedCheckpointVersion;
  models::GptConfig model;
  ShardedLayout layout;
  TrainState state;
  int64_t optim_step = -1;  // AdamW updates; -1: no optimizer state
  std::vector<ShardFile> shards;
  std::vector<ManifestTensor> tensors;
};

std::string manifest_to_json(const Manifest& m);
// Parses and validates (see validate_manifest); `name` stands for the file in messages.
Manifest parse_manifest(const std::string& text, const std::string& name);
// Every piece inside its tensor's box and its box inside the tensor, each element of each tensor
// covered exactly once, every piece's file among the shards, no tensor named twice. Throws one
// line naming the manifest, the tensor and the problem.
void validate_manifest(const Manifest& m, const std::string& name);
// Writes atomically (temporary file, then rename).
void write_manifest(const std::string& path, const Manifest& m);

// Whether `path` names a sharded checkpoint: a manifest.json, or a directory holding one.
bool is_sharded_checkpoint(const std::string& path);
// The manifest's path for a manifest path or a checkpoint directory.
std::string manifest_path(const std::string& path);
// Reads the manifest (a path accepted by manifest_path).
Manifest read_manifest(const std::string& path);

// The whole tensors of a sharded checkpoint reassembled from their pieces (those whose names
// `want` accepts; all when it is empty), with their manifest. Every shard file is checked for
// presence and size, each piece for dtype (f32) and element count.
struct ShardedCheckpoint {
  Manifest manifest;
  std::map<std::string, Tensor> tensors;
};
ShardedCheckpoint read_sharded_checkpoint(const std::string& path,
                                          const std::function<bool(const std::string&)>& want = {});

// Copies a piece's elements (in the piece's order) into the whole tensor's data of `shape`.
void scatter_piece(const float* piece, const PiecePlace& place, const Shape& shape, float* whole);

// The directory of one save's shards: "step-00000006-<tag>" (`tag` tells apart saves at the same
// step, so that a new save never overwrites a shard that the current manifest names).
std::string shard_directory_name(int64_t step, const std::string& tag);
// "rank-00003.safetensors".
std::string shard_file_name(int rank);

}  // namespace gannet::io
