#include "gannet/data/classification_set.h"

#include <map>
#include <nlohmann/json.hpp>

#include "gannet/core/error.h"
#include "gannet/core/limits.h"
#include "gannet/core/parse_number.h"
#include "gannet/io/safetensors.h"

namespace gannet::data {

namespace {

using json = nlohmann::json;

void validate_metadata(const ClassificationSet& s, const std::string& where) {
  GANNET_CHECK(!s.task.empty(), where, ": empty task name");
  GANNET_CHECK(s.split == "train" || s.split == "val", where, ": split ", quote_text(s.split), " is not train or val");
  GANNET_CHECK(!s.classes.empty() && s.classes.size() <= (1u << 15), where, ": ", s.classes.size(),
               " classes (must be in [1, 32768])");
  GANNET_CHECK(s.window >= 1 && s.window <= kMaxContext, where, ": window ", s.window, " is outside [1, ",
               kMaxContext, "]");
  GANNET_CHECK(s.vocab_size >= 1 && s.vocab_size <= kMaxVocabSize, where, ": vocab size ", s.vocab_size,
               " is outside [1, ", kMaxVocabSize, "]");
  GANNET_CHECK(s.doc_ids.size() <= (size_t)INT32_MAX, where, ": too many documents");
}

void validate_tensors(const ClassificationSet& s, const std::string& where) {
  auto check = [&](const Tensor& t, const char* name, DType dtype, const Shape& shape) {
    GANNET_CHECK(t.defined(), where, ": no tensor '", name, "'");
    GANNET_CHECK(t.dtype() == dtype && t.shape() == shape, where, ": tensor '", name, "': expected ",
                 dtype_name(dtype), shape_str(shape), ", got ", dtype_name(t.dtype()), shape_str(t.shape()));
  };
  GANNET_CHECK(s.labels.defined(), where, ": no tensor 'labels'");
  GANNET_CHECK(s.labels.ndim() == 1, where, ": tensor 'labels' has shape ", shape_str(s.labels.shape()),
               ", expected one dimension");
  const int64_t n = s.labels.dim(0);
  check(s.labels, "labels", DType::i32, {n});
  check(s.doc, "doc", DType::i32, {n});
  check(s.tokens, "tokens", DType::i32, {n, s.window});
  check(s.mask, "mask", DType::u8, {n, s.window});
}

// Row i: mask 1s then 0s with at least one 1, real tokens in [0, vocab), padding 0.
void validate_window(const ClassificationSet& s, int64_t i, const std::string& where) {
  const int32_t* tok = s.tokens.data<int32_t>() + i * s.window;
  const uint8_t* m = s.mask.data<uint8_t>() + i * s.window;
  bool padding = false;
  for (int j = 0; j < s.window; ++j) {
    GANNET_CHECK(m[j] <= 1, where, ": window ", i, ": mask value ", (int)m[j], " at position ", j, " is not 0 or 1");
    if (m[j] == 0) {
      GANNET_CHECK(j > 0, where, ": window ", i, ": mask has no real token");
      GANNET_CHECK(tok[j] == 0, where, ": window ", i, ": padding position ", j, " holds token ", tok[j], ", not 0");
      padding = true;
    } else {
      GANNET_CHECK(!padding, where, ": window ", i, ": mask has a real token at position ", j, " after padding");
      GANNET_CHECK(tok[j] >= 0 && tok[j] < s.vocab_size, where, ": window ", i, ": token ", tok[j], " at position ",
                   j, " is outside [0, ", s.vocab_size, ")");
    }
  }
}

std::string metadata_value(const std::map<std::string, std::string>& md, const std::string& key,
                           const std::string& path) {
  auto it = md.find(key);
  GANNET_CHECK(it != md.end(), path, ": metadata has no '", key, "'");
  return it->second;
}

std::vector<std::string> string_list(const std::string& text, const std::string& key, const std::string& path) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  GANNET_CHECK(j.is_array(), path, ": metadata '", key, "' is not a JSON list");
  std::vector<std::string> out;
  for (const json& e : j) {
    GANNET_CHECK(e.is_string(), path, ": metadata '", key, "' holds a non-string");
    out.push_back(e.get<std::string>());
  }
  return out;
}

int metadata_int(const std::map<std::string, std::string>& md, const std::string& key, const std::string& path) {
  const int64_t v = parse_int64(metadata_value(md, key, path), str(path, ": metadata '", key, "'"));
  GANNET_CHECK(v >= 1 && v <= INT32_MAX, path, ": metadata '", key, "' is ", v, ", outside [1, ", INT32_MAX, "]");
  return (int)v;
}

}  // namespace

std::vector<int32_t> ClassificationSet::label_vector() const {
  const int32_t* p = labels.data<int32_t>();
  return std::vector<int32_t>(p, p + size());
}

std::vector<int32_t> ClassificationSet::doc_vector() const {
  const int32_t* p = doc.data<int32_t>();
  return std::vector<int32_t>(p, p + size());
}

void validate_classification_set(const ClassificationSet& s, const std::string& where) {
  validate_metadata(s, where);
  validate_tensors(s, where);
  const int32_t* labels = s.labels.data<int32_t>();
  const int32_t* doc = s.doc.data<int32_t>();
  std::map<int32_t, int32_t> label_of_doc;
  for (int64_t i = 0; i < s.size(); ++i) {
    GANNET_CHECK(labels[i] >= 0 && labels[i] < s.num_classes(), where, ": window ", i, ": label ", labels[i],
                 " is outside [0, ", s.num_classes(), ")");
    GANNET_CHECK(doc[i] >= 0 && (size_t)doc[i] < s.doc_ids.size(), where, ": window ", i, ": document index ",
                 doc[i], " is outside [0, ", s.doc_ids.size(), ")");
    auto [it, fresh] = label_of_doc.emplace(doc[i], labels[i]);
    GANNET_CHECK(fresh || it->second == labels[i], where, ": window ", i, ": document ", s.doc_ids[doc[i]],
                 " has two labels, ", it->second, " and ", labels[i]);
    validate_window(s, i, where);
  }
}

void write_classification_set(const std::string& path, const ClassificationSet& s) {
  validate_classification_set(s, str("cannot write ", path));
  // Names from a file (document ids, class names) that are not UTF-8 cannot be JSON text.
  auto json_list = [&](const std::vector<std::string>& names, const char* what) {
    try {
      return json(names).dump();
    } catch (const json::exception& e) {
      fail(str("cannot write ", path, ": its ", what, " are not valid UTF-8 (", e.what(), ")"));
    }
  };
  const std::map<std::string, std::string> md = {
      {"format", kClassificationFormat},     {"task", s.task},
      {"split", s.split},                    {"classes", json_list(s.classes, "class names")},
      {"window", std::to_string(s.window)},  {"vocab_size", std::to_string(s.vocab_size)},
      {"doc_ids", json_list(s.doc_ids, "document ids")},   {"source", s.source}};
  io::save_safetensors(path, {{"tokens", s.tokens}, {"mask", s.mask}, {"labels", s.labels}, {"doc", s.doc}}, md);
}

ClassificationSet read_classification_set(const std::string& path) {
  const io::SafeTensors st = io::SafeTensors::open(path);
  const auto& md = st.metadata();
  const std::string format = metadata_value(md, "format", path);
  GANNET_CHECK(format == kClassificationFormat, path, ": format ", quote_text(format), " is not ",
               kClassificationFormat);
  ClassificationSet s;
  s.task = metadata_value(md, "task", path);
  s.split = metadata_value(md, "split", path);
  s.classes = string_list(metadata_value(md, "classes", path), "classes", path);
  s.doc_ids = string_list(metadata_value(md, "doc_ids", path), "doc_ids", path);
  s.window = metadata_int(md, "window", path);
  s.vocab_size = metadata_int(md, "vocab_size", path);
  s.source = metadata_value(md, "source", path);
  for (const char* name : {"tokens", "mask", "labels", "doc"})
    GANNET_CHECK(st.has(name), path, ": no tensor '", name, "'");
  s.tokens = st.get("tokens");
  s.mask = st.get("mask");
  s.labels = st.get("labels");
  s.doc = st.get("doc");
  validate_classification_set(s, path);
  return s;
}

}  // namespace gannet::data
