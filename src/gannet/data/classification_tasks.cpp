#include "gannet/data/classification_tasks.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "gannet/core/atomic_file.h"
#include "gannet/core/checked_math.h"
#include "gannet/core/error.h"
#include "gannet/core/limits.h"

namespace gannet::data {

namespace fs = std::filesystem;

namespace {

// The data's stamp: prepare.json, parsed and dumped compactly (prepare rewrites it, with the
// output sizes, whenever it rebuilds anything).
std::string source_stamp(const fs::path& dir) {
  const fs::path p = dir / "prepare.json";
  GANNET_CHECK(fs::exists(p), "data tasks: ", p.string(), " is missing: ", dir.string(),
               " is not prepared (run `gannet data prepare`)");
  nlohmann::json j = nlohmann::json::parse(read_file(p.string()), nullptr, /*allow_exceptions=*/false);
  GANNET_CHECK(j.is_object(), "data tasks: ", p.string(), " is not a JSON object (run `gannet data prepare`)");
  return j.dump();
}

// Every document ends with the same token (the eos) and lies within its split's file.
void check_documents(const std::vector<DocRow>& docs, const TokenFile& train, const TokenFile& val,
                     const std::string& table) {
  int32_t eos = -1;
  for (const DocRow& d : docs) {
    const TokenFile& f = d.val ? val : train;
    const int64_t end = checked_add(d.offset, d.count, str(table, ": document ", d.id, " token range"));
    GANNET_CHECK(end <= f.size(), table, ": document ", d.id, " ends at token ", end, ", beyond the ", f.size(),
                 " tokens of ", f.path());
    GANNET_CHECK(d.count >= 2, table, ": document ", d.id, " has no tokens besides its eos");
    const int32_t last = f.at(end - 1);
    if (eos < 0) eos = last;
    GANNET_CHECK(last == eos, table, ": document ", d.id, " ends with token ", last, ", not the eos ", eos,
                 " that ends the others (offsets out of step with the token files?)");
  }
}

SplitSummary summarize(const std::string& path, const ClassificationSet& s) {
  SplitSummary out;
  out.path = path;
  out.windows = s.size();
  out.class_counts.assign(s.num_classes(), 0);
  for (int32_t y : s.label_vector()) ++out.class_counts[y];
  const std::vector<int32_t> docs = s.doc_vector();
  out.documents = (int64_t)std::set<int32_t>(docs.begin(), docs.end()).size();
  return out;
}

// The task's two sets as found on disk, when both read back valid and match; empty otherwise.
bool read_if_current(const std::string& train_path, const std::string& val_path, const BrownTask& task,
                     int window, const std::string& source, ClassificationSet* train, ClassificationSet* val) {
  for (auto [path, split, out] : {std::tuple{train_path, "train", train}, std::tuple{val_path, "val", val}}) {
    if (!fs::exists(path)) return false;
    try {
      *out = read_classification_set(path);
    } catch (const Error& e) {
      std::fprintf(stderr, "[data] rewriting %s: %s\n", path.c_str(), e.what());
      return false;
    }
    if (out->task != task.name || out->split != split || out->window != window || out->source != source ||
        out->classes != task.classes)
      return false;
  }
  return true;
}

}  // namespace

ClassificationSet cut_windows(const BrownTask& task, const std::vector<DocRow>& docs, const TokenFile& tokens,
                              bool val, int window, const std::string& source) {
  GANNET_CHECK(window >= 1 && window <= kMaxContext, "data tasks: window ", window, " is outside [1, ",
               kMaxContext, "]");
  ClassificationSet s;
  s.task = task.name;
  s.split = val ? "val" : "train";
  s.classes = task.classes;
  s.window = window;
  s.vocab_size = tokens.vocab_size();
  s.source = source;
  std::vector<int32_t> tok, labels, doc;
  std::vector<uint8_t> mask;
  for (size_t d = 0; d < docs.size(); ++d) {
    const DocRow& row = docs[d];
    s.doc_ids.push_back(row.id);
    if (row.val != val) continue;
    const int label = brown_class_of(task, row.genre);
    GANNET_CHECK(label >= 0, "data tasks: document ", row.id, ": genre '", row.genre, "' is not a Brown genre (",
                 kBrownGenres, ")");
    const std::vector<int32_t> text = tokens.read(row.offset, row.count - 1);  // without the eos
    for (size_t start = 0; start < text.size(); start += window) {
      const size_t real = std::min(text.size() - start, (size_t)window);
      tok.insert(tok.end(), text.begin() + start, text.begin() + start + real);
      tok.insert(tok.end(), window - real, 0);
      mask.insert(mask.end(), real, 1);
      mask.insert(mask.end(), window - real, 0);
      labels.push_back(label);
      doc.push_back((int32_t)d);
    }
  }
  const int64_t n = (int64_t)labels.size();
  s.tokens = Tensor::empty({n, window}, DType::i32);
  s.mask = Tensor::empty({n, window}, DType::u8);
  s.labels = Tensor::empty({n}, DType::i32);
  s.doc = Tensor::empty({n}, DType::i32);
  std::copy(tok.begin(), tok.end(), s.tokens.data<int32_t>());
  std::copy(mask.begin(), mask.end(), s.mask.data<uint8_t>());
  std::copy(labels.begin(), labels.end(), s.labels.data<int32_t>());
  std::copy(doc.begin(), doc.end(), s.doc.data<int32_t>());
  return s;
}

std::string classification_set_path(const std::string& data_dir, const std::string& task, const std::string& split) {
  return (fs::path(data_dir) / "tasks" / task / (split + ".safetensors")).string();
}

std::vector<TaskSummary> write_classification_tasks(const TasksOptions& opt) {
  const fs::path dir(opt.data_dir);
  const std::string source = source_stamp(dir);
  const std::string table = (dir / "docs.tsv").string();
  const std::vector<DocRow> docs = read_docs_table(table);
  const TokenFile train_tok = TokenFile::open((dir / "train.tok").string());
  const TokenFile val_tok = TokenFile::open((dir / "val.tok").string());
  GANNET_CHECK(train_tok.vocab_size() == val_tok.vocab_size(), "data tasks: ", train_tok.path(), " has vocab size ",
               train_tok.vocab_size(), " but ", val_tok.path(), " has ", val_tok.vocab_size());
  check_documents(docs, train_tok, val_tok, table);

  std::vector<TaskSummary> out;
  for (const BrownTask& task : brown_tasks()) {
    const std::string train_path = classification_set_path(opt.data_dir, task.name, "train");
    const std::string val_path = classification_set_path(opt.data_dir, task.name, "val");
    ClassificationSet train, val;
    TaskSummary sum;
    sum.up_to_date = read_if_current(train_path, val_path, task, opt.window, source, &train, &val);
    if (!sum.up_to_date) {
      std::error_code ec;
      fs::create_directories(fs::path(train_path).parent_path(), ec);
      GANNET_CHECK(!ec, "data tasks: cannot create ", fs::path(train_path).parent_path().string(), ": ",
                   ec.message());
      write_classification_set(train_path, cut_windows(task, docs, train_tok, false, opt.window, source));
      write_classification_set(val_path, cut_windows(task, docs, val_tok, true, opt.window, source));
      train = read_classification_set(train_path);
      val = read_classification_set(val_path);
    }
    sum.task = task.name;
    sum.classes = task.classes;
    sum.train = summarize(train_path, train);
    sum.val = summarize(val_path, val);
    sum.baseline = metrics::majority_baseline(train.label_vector(), val.label_vector(), task.classes.size());
    out.push_back(std::move(sum));
  }
  return out;
}

}  // namespace gannet::data
