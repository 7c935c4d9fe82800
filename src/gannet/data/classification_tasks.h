// `gannet data tasks`: the Brown sequence-classification tasks (brown_tasks.h) cut from a prepared
// data directory (prepare.h) into <data_dir>/tasks/<task>/{train,val}.safetensors
// (classification_set.h).
//
// Windows: each document's tokens, without the eos that closes it in the token file, cut into
// consecutive non-overlapping windows of `window` tokens; the last window of a document holds
// what is left and is padded (mask 0, token 0) to the full length, so that no token and no
// document is lost (a document shorter than a window gives one padded window). Windows are in
// docs.tsv order, then by position; every window carries its document's class and index. A
// document stays in the split docs.tsv gives it, so no document is in both splits.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gannet/data/brown_tasks.h"
#include "gannet/data/classification_set.h"
#include "gannet/data/docs_table.h"
#include "gannet/data/token_file.h"
#include "gannet/metrics/majority_baseline.h"

namespace gannet::data {

struct TasksOptions {
  std::string data_dir = "data/brown";
  int window = 128;
};

struct SplitSummary {
  std::string path;
  int64_t windows = 0;
  int64_t documents = 0;
  std::vector<int64_t> class_counts;  // windows per class
};

struct TaskSummary {
  std::string task;
  std::vector<std::string> classes;
  bool up_to_date = false;  // both files already matched the options and the data: nothing written
  SplitSummary train, val;
  metrics::MajorityBaseline baseline;  // majority class of train, scored on val
};

// The windows of one split (val or train) of `task`, from the split's token file. `source` is
// the stamp recorded in the set. Throws a one-line gannet::Error when a document's tokens lie
// beyond the file, or its genre is not a Brown genre.
ClassificationSet cut_windows(const BrownTask& task, const std::vector<DocRow>& docs, const TokenFile& tokens,
                              bool val, int window, const std::string& source);

// <data_dir>/tasks/<task>/<split>.safetensors
std::string classification_set_path(const std::string& data_dir, const std::string& task, const std::string& split);

// Writes every task of brown_tasks() from the prepared directory, and summarizes each from the
// files as written (or as found). Idempotent: a task whose two files read back valid with the
// same window and the same source stamp (prepare.json's contents) is left as it is. Files are
// written atomically; a run interrupted between them is redone the next time. Throws a one-line
// gannet::Error when the directory is not prepared or its files disagree.
std::vector<TaskSummary> write_classification_tasks(const TasksOptions& opt);

}  // namespace gannet::data
