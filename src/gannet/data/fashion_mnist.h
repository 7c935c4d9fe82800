// Fashion-MNIST (Debian `dataset-fashion-mnist`: /usr/share/datasets/fashion-mnist/*.gz) for
// VL-MoE's zero-shot classification by class name: the gzip-compressed IDX files read, checked,
// and written as DIR/{train,test}.safetensors with DIR/classes.txt (format: docs/vlmoe.md).
//
// IDX: bytes 0 0, a type byte (0x08: unsigned bytes, the only type these files use), the number
// of dimensions D, then D big-endian uint32 sizes, then the data, row-major.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gannet/core/tensor.h"
#include "gannet/data/prepare_stamp.h"

namespace gannet::data {

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;  // product(dims) bytes
};

// Reads a gzip-compressed IDX file of unsigned bytes (an uncompressed one reads as well: zlib
// passes it through). Throws a one-line gannet::Error naming the file for a missing file, a
// corrupt or truncated gzip stream, a bad magic or type, or data shorter or longer than the
// header says.
IdxArray read_idx_gz(const std::string& path);

// Writes `a` gzip-compressed as IDX (type 0x08), atomically (temporary + rename).
void write_idx_gz(const std::string& path, const IdxArray& a);

// The ten class names, in label order: "T-shirt/top", "Trouser", ..., "Ankle boot".
const std::vector<std::string>& fashion_mnist_classes();

struct LabelledImages {
  Tensor images;               // u8 [N, H, W], 0 paper .. 255 ink
  std::vector<int32_t> labels;  // [N], each < number of classes
};

// One split from its image file ([N, H, W]) and label file ([N]); throws naming the file when the
// shapes disagree or a label is not a class.
LabelledImages read_idx_split(const std::string& images_path, const std::string& labels_path, int num_classes);

struct FashionMnistOptions {
  std::string out_dir = "data/fashion-mnist";
  std::string source_dir = "/usr/share/datasets/fashion-mnist";
};

// Idempotent as prepare_glyphs: with a matching stamp does nothing; otherwise reads the four files
// of source_dir (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-... as test) and
// writes DIR/train.safetensors, DIR/test.safetensors, DIR/classes.txt and DIR/summary.json, the
// stamp last.
PreparedData prepare_fashion_mnist(const FashionMnistOptions& opt);

}  // namespace gannet::data
