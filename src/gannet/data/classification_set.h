// One split of a sequence-classification task as a file: fixed-length token windows, each with
// the class of the document it was cut from. Stored as safetensors:
//   tokens  i32 [N, W]  token ids; where mask is 0 the id is 0 (padding)
//   mask    u8  [N, W]  1 = real token; each row is 1s then 0s, with at least one 1
//   labels  i32 [N]     class in [0, number of classes)
//   doc     i32 [N]     the window's document: an index into the doc_ids metadata list
// and the metadata (all strings, as safetensors requires):
//   format      "gannet-classification-1"
//   task        e.g. "brown-genre";  split  "train" or "val"
//   classes     JSON list of the class names (label c is classes[c])
//   window      W;  vocab_size  the tokenizer's vocabulary (every real token is below it)
//   doc_ids     JSON list of the document ids (every window of a document has the same label)
//   source      the stamp of the data the windows were cut from (classification_tasks.h)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gannet/core/tensor.h"

namespace gannet::data {

inline constexpr const char* kClassificationFormat = "gannet-classification-1";

struct ClassificationSet {
  std::string task, split;
  std::vector<std::string> classes;
  std::vector<std::string> doc_ids;
  int window = 0;
  int vocab_size = 0;
  std::string source;
  Tensor tokens, mask, labels, doc;  // as the file comment says

  int64_t size() const { return labels.defined() ? labels.dim(0) : 0; }
  int num_classes() const { return (int)classes.size(); }
  // The labels and document indices as vectors (copies).
  std::vector<int32_t> label_vector() const;
  std::vector<int32_t> doc_vector() const;
};

// Checks every rule of the file comment; the one-line gannet::Error starts with `where` (a path).
void validate_classification_set(const ClassificationSet& set, const std::string& where);

// Validates, then writes atomically (temporary + rename). The directory must exist.
void write_classification_set(const std::string& path, const ClassificationSet& set);

// Reads and validates a file: metadata present and well-formed, tensors of the right dtypes and
// agreeing shapes, labels in [0, classes), real tokens in [0, vocab_size), masks 1s then 0s,
// document indices in range with one label per document. Any problem is a one-line gannet::Error
// naming the file and the problem. The tensors share the file's memory map.
ClassificationSet read_classification_set(const std::string& path);

}  // namespace gannet::data
