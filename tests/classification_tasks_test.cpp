// The Brown classification tasks (issue 16): windows cut from a prepared directory, their file
// format and its reader's checks, the accuracy / macro-F1 metrics and the majority baseline, and
// `gannet data tasks` through the real binary.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>

#include "gannet/core/atomic_file.h"
#include "gannet/data/brown_tasks.h"
#include "gannet/data/classification_tasks.h"
#include "gannet/data/docs_table.h"
#include "gannet/data/token_file.h"
#include "gannet/io/safetensors.h"
#include "gannet/metrics/classification_metrics.h"
#include "gannet/metrics/majority_baseline.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::data;
using gannet::testing::has;
using gannet::testing::message_of;
using gannet::testing::write;
namespace fs = std::filesystem;

namespace {

constexpr int32_t kEos = 2;

struct FakeDoc {
  std::string id;
  char genre;
  bool val;
  std::vector<int32_t> text;  // without the eos
};

// Six documents over genres a, b, k, r; window 4 cuts them as the tests below spell out.
std::vector<FakeDoc> fake_docs() {
  return {{"ca01", 'a', false, {10, 11, 12, 13, 14, 15}},
          {"ca02", 'a', true, {20, 21, 22, 23}},
          {"cb01", 'b', false, {30}},
          {"ck01", 'k', false, {40, 41, 42, 43, 44, 45, 46, 47}},
          {"ck02", 'k', true, {5, 6, 7, 8, 9}},
          {"cr01", 'r', false, {3, 4}}};
}

// What `gannet data prepare` leaves that the tasks read: docs.tsv, the token files (each
// document followed by eos), prepare.json.
void write_prepared(const fs::path& dir, const std::vector<FakeDoc>& docs, int vocab = 50) {
  fs::create_directories(dir);
  std::vector<int32_t> train, val;
  std::string tsv = "id\tgenre\tsplit\ttoken_offset\ttoken_count\n";
  for (const FakeDoc& d : docs) {
    std::vector<int32_t>& out = d.val ? val : train;
    tsv += str(d.id, '\t', d.genre, '\t', d.val ? "val" : "train", '\t', out.size(), '\t', d.text.size() + 1, '\n');
    out.insert(out.end(), d.text.begin(), d.text.end());
    out.push_back(kEos);
  }
  write_token_file((dir / "train.tok").string(), train, vocab);
  write_token_file((dir / "val.tok").string(), val, vocab);
  write((dir / "docs.tsv").string(), tsv);
  write((dir / "prepare.json").string(), "{\"options\": {\"seed\": 1}}\n");
}

std::vector<int32_t> ints(const Tensor& t) {
  const int32_t* p = t.data<int32_t>();
  return std::vector<int32_t>(p, p + t.numel());
}
std::vector<int> bytes(const Tensor& t) {
  const uint8_t* p = t.data<uint8_t>();
  return std::vector<int>(p, p + t.numel());
}

class ClassificationTasks : public gannet::testing::TempDirTest {
 protected:
  std::string data() const { return file("data"); }
  std::vector<TaskSummary> make(int window) {
    TasksOptions opt;
    opt.data_dir = data();
    opt.window = window;
    return write_classification_tasks(opt);
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Windows

TEST_F(ClassificationTasks, WindowsLabelsAndMasksAreExactlyTheDocumentsCut) {
  write_prepared(data(), fake_docs());
  const auto sums = make(4);
  ASSERT_EQ(sums.size(), 2u);
  const ClassificationSet train = read_classification_set(classification_set_path(data(), "brown-genre", "train"));
  const ClassificationSet val = read_classification_set(classification_set_path(data(), "brown-genre", "val"));
  EXPECT_EQ(train.task, "brown-genre");
  EXPECT_EQ(train.split, "train");
  EXPECT_EQ(train.window, 4);
  EXPECT_EQ(train.vocab_size, 50);
  EXPECT_EQ(train.num_classes(), 15);
  EXPECT_EQ(train.classes[0], "news");
  EXPECT_EQ(train.classes[14], "humor");
  EXPECT_EQ(train.doc_ids, (std::vector<std::string>{"ca01", "ca02", "cb01", "ck01", "ck02", "cr01"}));
  EXPECT_EQ(train.source, "{\"options\":{\"seed\":1}}");
  // The eos is not in any window; a partial last window is padded with token 0, mask 0.
  EXPECT_EQ(ints(train.tokens), (std::vector<int32_t>{10, 11, 12, 13, 14, 15, 0, 0, 30, 0, 0, 0,  //
                                                       40, 41, 42, 43, 44, 45, 46, 47, 3, 4, 0, 0}));
  EXPECT_EQ(bytes(train.mask), (std::vector<int>{1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0,  //
                                                 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}));
  EXPECT_EQ(ints(train.labels), (std::vector<int32_t>{0, 0, 1, 9, 9, 14}));
  EXPECT_EQ(ints(train.doc), (std::vector<int32_t>{0, 0, 2, 3, 3, 5}));
  EXPECT_EQ(ints(val.tokens), (std::vector<int32_t>{20, 21, 22, 23, 5, 6, 7, 8, 9, 0, 0, 0}));
  EXPECT_EQ(bytes(val.mask), (std::vector<int>{1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0}));
  EXPECT_EQ(ints(val.labels), (std::vector<int32_t>{0, 9, 9}));
  EXPECT_EQ(ints(val.doc), (std::vector<int32_t>{1, 4, 4}));

  const ClassificationSet mode = read_classification_set(classification_set_path(data(), "brown-mode", "train"));
  EXPECT_EQ(mode.classes, (std::vector<std::string>{"informative", "imaginative"}));
  EXPECT_EQ(ints(mode.labels), (std::vector<int32_t>{0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(ints(mode.tokens), ints(train.tokens));

  // The summaries count windows, documents and classes of each split.
  const TaskSummary& g = sums[0];
  EXPECT_EQ(g.task, "brown-genre");
  EXPECT_FALSE(g.up_to_date);
  EXPECT_EQ(g.train.windows, 6);
  EXPECT_EQ(g.train.documents, 4);
  EXPECT_EQ(g.val.windows, 3);
  EXPECT_EQ(g.val.documents, 2);
  std::vector<int64_t> want(15, 0);
  want[0] = 2, want[1] = 1, want[9] = 2, want[14] = 1;
  EXPECT_EQ(g.train.class_counts, want);
  EXPECT_EQ(sums[1].val.class_counts, (std::vector<int64_t>{1, 2}));
}

TEST_F(ClassificationTasks, AShortDocumentGivesOnePaddedWindowAndTheDefaultWindowIs128) {
  write_prepared(data(), fake_docs());
  EXPECT_EQ(TasksOptions().window, 128);
  make(128);
  const ClassificationSet train = read_classification_set(classification_set_path(data(), "brown-genre", "train"));
  ASSERT_EQ(train.size(), 4);  // one window per document, none lost
  EXPECT_EQ(ints(train.doc), (std::vector<int32_t>{0, 2, 3, 5}));
  const std::vector<int> mask = bytes(train.mask);
  EXPECT_EQ(std::count(mask.begin(), mask.begin() + 128, 1), 6);
  EXPECT_EQ(std::count(mask.begin() + 128, mask.begin() + 256, 1), 1);
  // Window equal to a document's length: exactly one full window, no empty one after it.
  make(5);
  const ClassificationSet val = read_classification_set(classification_set_path(data(), "brown-genre", "val"));
  EXPECT_EQ(ints(val.doc), (std::vector<int32_t>{1, 4}));
  EXPECT_EQ(bytes(val.mask), (std::vector<int>{1, 1, 1, 1, 0, 1, 1, 1, 1, 1}));
}

TEST_F(ClassificationTasks, AnEmptyValidationSplitGivesAnEmptySet) {
  auto docs = fake_docs();
  for (FakeDoc& d : docs) d.val = false;  // prepare --val-fraction 0
  write_prepared(data(), docs);
  const auto sums = make(4);
  EXPECT_EQ(sums[0].train.windows, 9);
  EXPECT_EQ(sums[0].val.windows, 0);
  EXPECT_EQ(sums[0].val.documents, 0);
  EXPECT_DOUBLE_EQ(sums[0].baseline.accuracy, 0.0);
  const ClassificationSet val = read_classification_set(classification_set_path(data(), "brown-mode", "val"));
  EXPECT_EQ(val.size(), 0);
  EXPECT_EQ(val.tokens.shape(), (Shape{0, 4}));
  EXPECT_TRUE(make(4)[1].up_to_date);
}

TEST_F(ClassificationTasks, NoDocumentIsInBothSplitsAndEveryDocumentIsInOne) {
  write_prepared(data(), fake_docs());
  make(3);
  for (const char* task : {"brown-genre", "brown-mode"}) {
    const auto train = read_classification_set(classification_set_path(data(), task, "train")).doc_vector();
    const auto val = read_classification_set(classification_set_path(data(), task, "val")).doc_vector();
    std::set<int32_t> a(train.begin(), train.end()), b(val.begin(), val.end()), both;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::inserter(both, both.begin()));
    EXPECT_TRUE(both.empty()) << task;
    EXPECT_EQ(a, (std::set<int32_t>{0, 2, 3, 5})) << task;
    EXPECT_EQ(b, (std::set<int32_t>{1, 4})) << task;
  }
}

TEST_F(ClassificationTasks, GenresMapToTheCorpusCategoriesAndHalves) {
  const BrownTask& genre = brown_task("brown-genre");
  const BrownTask& mode = brown_task("brown-mode");
  const std::string letters = kBrownGenres;
  ASSERT_EQ(letters.size(), 15u);
  for (size_t i = 0; i < letters.size(); ++i) {
    EXPECT_EQ(brown_class_of(genre, letters[i]), (int)i) << letters[i];
    EXPECT_EQ(brown_class_of(mode, letters[i]), letters[i] <= 'j' ? 0 : 1) << letters[i];
  }
  for (char c : {'i', 'o', 'q', 's', 'z', 'A', '\0'}) EXPECT_EQ(brown_class_of(genre, c), -1) << c;
  EXPECT_TRUE(has(message_of([] { brown_task("brown-topic"); }), "unknown classification task 'brown-topic'"));
}

// ---------------------------------------------------------------------------------------------
// Idempotence and bad inputs

TEST_F(ClassificationTasks, ASecondRunWritesNothingAndAChangeRewrites) {
  write_prepared(data(), fake_docs());
  make(4);
  const std::string path = classification_set_path(data(), "brown-mode", "val");
  const auto before = fs::last_write_time(path);
  const std::string bytes_before = read_file(path);
  const auto again = make(4);
  EXPECT_TRUE(again[0].up_to_date && again[1].up_to_date);
  EXPECT_EQ(again[0].train.windows, 6);
  EXPECT_EQ(fs::last_write_time(path), before);
  // Another window, another stamp, or a corrupt file: rewritten.
  EXPECT_FALSE(make(3)[1].up_to_date);
  EXPECT_TRUE(make(3)[1].up_to_date);
  write(data() + "/prepare.json", "{\"options\": {\"seed\": 2}}\n");
  EXPECT_FALSE(make(3)[1].up_to_date);
  EXPECT_EQ(read_classification_set(path).source, "{\"options\":{\"seed\":2}}");
  write(path, "garbage");
  EXPECT_FALSE(make(4)[1].up_to_date);
  write(data() + "/prepare.json", "{\"options\": {\"seed\": 1}}\n");
  make(4);
  EXPECT_TRUE(read_file(path) == bytes_before);
  for (const auto& e : fs::recursive_directory_iterator(data()))
    EXPECT_FALSE(has(e.path().filename().string(), ".tmp")) << e.path();
}

TEST_F(ClassificationTasks, UnpreparedOrInconsistentDataAreOneLineErrors) {
  auto error_of = [&] { return message_of([&] { make(4); }); };
  auto one_line = [](const std::string& e) { return e.find('\n') == std::string::npos; };
  fs::create_directories(data());
  std::string e = error_of();
  EXPECT_TRUE(has(e, "prepare.json is missing") && has(e, "gannet data prepare")) << e;

  auto docs = fake_docs();
  docs[2].genre = 'q';
  write_prepared(data(), docs);
  e = error_of();
  EXPECT_TRUE(has(e, "document cb01: genre 'q' is not a Brown genre")) << e;

  write_prepared(data(), fake_docs());
  const std::string tsv = read_file(data() + "/docs.tsv");
  auto with_line = [&](const std::string& from, const std::string& to) {
    std::string s = tsv;
    s.replace(s.find(from), from.size(), to);
    write(data() + "/docs.tsv", s);
    return error_of();
  };
  e = with_line("ck01\tk\ttrain\t9\t9", "ck01\tk\ttrain\t9\t90");
  EXPECT_TRUE(has(e, "document ck01 ends at token 99, beyond the 21 tokens of")) << e;
  e = with_line("ck01\tk\ttrain\t9\t9", "ck01\tk\ttrain\t8\t9");
  EXPECT_TRUE(has(e, "document ck01 ends with token 47, not the eos 2")) << e;
  e = with_line("cb01\tb\ttrain", "cb01\tb\ttest");
  EXPECT_TRUE(has(e, "docs.tsv: line 4: split 'test' is not train or val")) << e;
  e = with_line("ck01\tk\ttrain\t9\t9", "ck01\tk\ttrain\t9\tnine");
  EXPECT_TRUE(has(e, "docs.tsv: line 5: token_count") && has(e, "nine")) << e;
  e = with_line("ck01\tk\ttrain\t9\t9", "ca01\tk\ttrain\t9\t9");
  EXPECT_TRUE(has(e, "line 5: document 'ca01' appears twice")) << e;
  e = with_line("id\tgenre", "id\tkind");
  EXPECT_TRUE(has(e, "line 1 is not the header")) << e;
  EXPECT_TRUE(one_line(e)) << e;
  // Nothing was written by any of the failed runs.
  EXPECT_FALSE(fs::exists(data() + "/tasks/brown-genre/train.safetensors"));
}

// ---------------------------------------------------------------------------------------------
// The reader

namespace {

// Rewrites a valid set file with one change, straight through save_safetensors (the writer
// refuses invalid sets), and returns the reader's error.
class CorruptSet : public ClassificationTasks {
 protected:
  void SetUp() override {
    ClassificationTasks::SetUp();
    write_prepared(data(), fake_docs());
    make(4);
    good_ = classification_set_path(data(), "brown-genre", "train");
    io::SafeTensors st = io::SafeTensors::open(good_);
    metadata_ = st.metadata();
    for (const char* n : {"tokens", "mask", "labels", "doc"}) tensors_[n] = st.get(n).clone();
  }
  std::string error_after(const std::function<void(std::map<std::string, Tensor>&,
                                                   std::map<std::string, std::string>&)>& change) {
    auto tensors = tensors_;
    for (auto& [n, t] : tensors) t = t.clone();
    auto md = metadata_;
    change(tensors, md);
    std::vector<std::pair<std::string, Tensor>> list;
    for (auto& [n, t] : tensors) list.emplace_back(n, t);
    const std::string p = file("bad.safetensors");
    io::save_safetensors(p, list, md);
    const std::string e = message_of([&] { read_classification_set(p); });
    EXPECT_TRUE(has(e, p)) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    return e;
  }
  std::string good_;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, Tensor> tensors_;
};

}  // namespace

TEST_F(CorruptSet, EachBrokenRuleIsAOneLineErrorNamingTheFileAndProblem) {
  // The file as written reads, and the same bytes rewritten by this helper read too.
  EXPECT_EQ(read_classification_set(good_).size(), 6);
  // Shapes that disagree.
  EXPECT_TRUE(has(error_after([](auto& t, auto&) { t["tokens"] = t["tokens"].view({4, 6}); }),
                  "tensor 'tokens': expected i32[6, 4], got i32[4, 6]"));
  EXPECT_TRUE(has(error_after([](auto& t, auto&) { t["labels"] = t["labels"].slice(0, 5); }),
                  "tensor 'doc': expected i32[5], got i32[6]"));
  EXPECT_TRUE(has(error_after([](auto& t, auto&) { t["labels"] = t["labels"].view({2, 3}); }),
                  "tensor 'labels' has shape [2, 3], expected one dimension"));
  EXPECT_TRUE(has(error_after([](auto& t, auto&) { t["mask"] = Tensor::zeros({6, 4}, DType::i32); }),
                  "tensor 'mask': expected u8[6, 4], got i32[6, 4]"));
  EXPECT_TRUE(has(error_after([](auto& t, auto&) { t.erase("doc"); }), "no tensor 'doc'"));
  EXPECT_TRUE(has(error_after([](auto&, auto& m) { m["window"] = "5"; }), "tensor 'tokens': expected i32[6, 5]"));
  // Values out of range.
  EXPECT_TRUE(has(error_after([](auto& t, auto&) { t["labels"].template data<int32_t>()[2] = 15; }),
                  "window 2: label 15 is outside [0, 15)"));
  EXPECT_TRUE(has(error_after([](auto& t, auto&) { t["labels"].template data<int32_t>()[5] = -1; }),
                  "window 5: label -1 is outside [0, 15)"));
  EXPECT_TRUE(has(error_after([](auto& t, auto&) { t["tokens"].template data<int32_t>()[5] = 50; }),
                  "window 1: token 50 at position 1 is outside [0, 50)"));
  EXPECT_TRUE(has(error_after([](auto&, auto& m) { m["vocab_size"] = "40"; }),
                  "window 3: token 40 at position 0 is outside [0, 40)"));
  EXPECT_TRUE(has(error_after([](auto& t, auto&) { t["doc"].template data<int32_t>()[0] = 6; }),
                  "window 0: document index 6 is outside [0, 6)"));
  EXPECT_TRUE(has(error_after([](auto& t, auto&) { t["labels"].template data<int32_t>()[1] = 3; }),
                  "window 1: document ca01 has two labels, 0 and 3"));
  // Masks: only 0 and 1, 1s then 0s, at least one real token, padding holds 0.
  EXPECT_TRUE(has(error_after([](auto& t, auto&) { t["mask"].template data<uint8_t>()[9] = 2; }),
                  "window 2: mask value 2 at position 1 is not 0 or 1"));
  EXPECT_TRUE(has(error_after([](auto& t, auto&) { t["mask"].template data<uint8_t>()[8] = 0; }),
                  "window 2: mask has no real token"));
  EXPECT_TRUE(has(error_after([](auto& t, auto&) {
                    t["mask"].template data<uint8_t>()[2] = 0;
                    t["tokens"].template data<int32_t>()[2] = 0;
                  }),
                  "window 0: mask has a real token at position 3 after padding"));
  EXPECT_TRUE(has(error_after([](auto& t, auto&) { t["tokens"].template data<int32_t>()[7] = 9; }),
                  "window 1: padding position 3 holds token 9, not 0"));
  // Metadata.
  EXPECT_TRUE(has(error_after([](auto&, auto& m) { m.erase("classes"); }), "metadata has no 'classes'"));
  EXPECT_TRUE(has(error_after([](auto&, auto& m) { m["classes"] = "[\"a\", 3]"; }),
                  "metadata 'classes' holds a non-string"));
  EXPECT_TRUE(has(error_after([](auto&, auto& m) { m["doc_ids"] = "{"; }), "metadata 'doc_ids' is not a JSON list"));
  EXPECT_TRUE(has(error_after([](auto&, auto& m) { m["classes"] = "[\"a\", \"b\"]"; }),
                  "window 3: label 9 is outside [0, 2)"));
  EXPECT_TRUE(has(error_after([](auto&, auto& m) { m["window"] = "four"; }), "metadata 'window'"));
  EXPECT_TRUE(has(error_after([](auto&, auto& m) { m["window"] = "0"; }), "metadata 'window' is 0"));
  EXPECT_TRUE(has(error_after([](auto&, auto& m) { m["format"] = "other"; }), "format 'other' is not"));
  EXPECT_TRUE(has(error_after([](auto&, auto& m) { m["split"] = "test"; }), "split 'test' is not train or val"));
  // And the writer refuses what the reader would refuse, leaving nothing behind.
  ClassificationSet s = read_classification_set(good_);
  s.labels = s.labels.clone();
  s.labels.data<int32_t>()[0] = 20;
  const std::string out = file("w.safetensors");
  EXPECT_TRUE(has(message_of([&] { write_classification_set(out, s); }), "cannot write " + out + ": window 0: label 20"));
  EXPECT_FALSE(fs::exists(out));
  // Document ids from docs.tsv that are not UTF-8 cannot be JSON text: a one-line error too.
  ClassificationSet bad_id = read_classification_set(good_);
  bad_id.doc_ids[0] = "c\xff";
  EXPECT_TRUE(has(message_of([&] { write_classification_set(out, bad_id); }),
                  "cannot write " + out + ": its document ids are not valid UTF-8"));
  EXPECT_FALSE(fs::exists(out));
}

// ---------------------------------------------------------------------------------------------
// Metrics and the baseline

TEST(ClassificationMetrics, MatchAHandComputedConfusionMatrix) {
  // 3 classes; class 2 is never predicted.
  //            pred 0  1  2
  //   true 0       1  1  0
  //   true 1       0  2  0
  //   true 2       2  0  0
  const std::vector<int32_t> labels = {0, 0, 1, 1, 2, 2}, preds = {0, 1, 1, 1, 0, 0};
  metrics::ConfusionMatrix m(3);
  m.add_all(labels, preds);
  EXPECT_EQ(m.total(), 6);
  EXPECT_EQ(m.count(2, 0), 2);
  EXPECT_EQ(m.count(0, 1), 1);
  EXPECT_EQ(m.true_count(2), 2);
  EXPECT_EQ(m.predicted_count(0), 3);
  EXPECT_EQ(m.predicted_count(2), 0);
  EXPECT_DOUBLE_EQ(m.accuracy(), 3.0 / 6);
  EXPECT_DOUBLE_EQ(m.f1(0), 2.0 / 5);  // tp 1, fp 2, fn 1
  EXPECT_DOUBLE_EQ(m.f1(1), 4.0 / 5);  // tp 2, fp 1, fn 0
  EXPECT_DOUBLE_EQ(m.f1(2), 0.0);      // never predicted
  EXPECT_DOUBLE_EQ(m.macro_f1(), (0.4 + 0.8 + 0.0) / 3);
  EXPECT_DOUBLE_EQ(metrics::accuracy(labels, preds, 3), 0.5);
  EXPECT_DOUBLE_EQ(metrics::macro_f1(labels, preds, 3), 0.4);
  // A fourth class with no true and no predicted sample counts as F1 0 and is averaged in.
  EXPECT_DOUBLE_EQ(metrics::macro_f1(labels, preds, 4), 1.2 / 4);
  EXPECT_DOUBLE_EQ(metrics::macro_f1({0, 1}, {0, 1}, 2), 1.0);
  EXPECT_DOUBLE_EQ(metrics::ConfusionMatrix(2).accuracy(), 0.0);
  EXPECT_DOUBLE_EQ(metrics::ConfusionMatrix(2).macro_f1(), 0.0);
}

TEST(ClassificationMetrics, OutOfRangeClassesAndLengthsAreErrors) {
  metrics::ConfusionMatrix m(3);
  EXPECT_TRUE(has(message_of([&] { m.add(3, 0); }), "true class 3 is outside [0, 3)"));
  EXPECT_TRUE(has(message_of([&] { m.add(0, -1); }), "predicted class -1 is outside [0, 3)"));
  EXPECT_TRUE(has(message_of([&] { m.add_all({0, 1}, {0}); }), "2 labels but 1 predictions"));
  EXPECT_TRUE(has(message_of([] { metrics::ConfusionMatrix(0); }), "0 classes"));
  EXPECT_EQ(m.total(), 0);
}

TEST(MajorityBaseline, PredictsTheMostFrequentTrainingClassOnValidation) {
  const auto b = metrics::majority_baseline({2, 1, 2, 0, 2}, {0, 2, 2, 1}, 3);
  EXPECT_EQ(b.majority_class, 2);
  EXPECT_DOUBLE_EQ(b.accuracy, 0.5);
  EXPECT_DOUBLE_EQ(b.macro_f1, (0 + 0 + 2.0 * 2 / (4 + 2)) / 3);  // class 2: tp 2, fp 2
  // A tie goes to the lowest class.
  EXPECT_EQ(metrics::majority_baseline({1, 0, 1, 0}, {1}, 2).majority_class, 0);
  EXPECT_TRUE(has(message_of([] { metrics::majority_baseline({}, {0}, 2); }), "no training labels"));
  EXPECT_TRUE(has(message_of([] { metrics::majority_baseline({2}, {0}, 2); }), "training label 2"));
  EXPECT_TRUE(has(message_of([] { metrics::majority_baseline({1}, {5}, 2); }), "true class 5"));
}

TEST_F(ClassificationTasks, SummariesCarryTheBaselineOfEachTask) {
  write_prepared(data(), fake_docs());
  const auto sums = make(4);
  // brown-genre: train classes news 2, editorial 1, fiction 2, humor 1: the tie goes to news (0);
  // val labels {0, 9, 9}: accuracy 1/3, F1 of news 2 * 1 / (2 + 2) = 0.5, the rest 0.
  EXPECT_EQ(sums[0].baseline.majority_class, 0);
  EXPECT_DOUBLE_EQ(sums[0].baseline.accuracy, 1.0 / 3);
  EXPECT_DOUBLE_EQ(sums[0].baseline.macro_f1, 0.5 / 15);
  // brown-mode: train 3 informative, 3 imaginative: informative; val {0, 1, 1}.
  EXPECT_EQ(sums[1].baseline.majority_class, 0);
  EXPECT_DOUBLE_EQ(sums[1].baseline.accuracy, 1.0 / 3);
  EXPECT_DOUBLE_EQ(sums[1].baseline.macro_f1, 0.25);
}

// ---------------------------------------------------------------------------------------------
// The command line

namespace {
struct CliRun {
  int rc;
  std::string out, err;
};
}  // namespace

class DataTasksCli : public ClassificationTasks {
 protected:
  CliRun run(const std::string& args) {
    const std::string out = file("stdout"), err = file("stderr");
    const int rc = std::system(("timeout 60 " + std::string(GANNET_BINARY) + " " + args + " >" + out + " 2>" + err).c_str());
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_file(out), read_file(err)};
  }
  static void one_line_error(const CliRun& r, const std::string& part) {
    EXPECT_EQ(r.rc, 1) << r.out << r.err;
    EXPECT_TRUE(has(r.err, part)) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
};

TEST_F(DataTasksCli, WritesBothTasksPrintsCountsAndBaselinesAndIsIdempotent) {
  write_prepared(data(), fake_docs());
  CliRun r = run("data tasks --data " + data() + " --window 4");
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "brown-genre: 15 classes, window 4, " + data() + "/tasks/brown-genre (written)")) << r.out;
  EXPECT_TRUE(has(r.out, "  train       6 windows from    4 documents: news 2 editorial 1 reviews 0")) << r.out;
  EXPECT_TRUE(has(r.out, "  val         3 windows from    2 documents: news 1")) << r.out;
  EXPECT_TRUE(has(r.out, "majority baseline: 'news' (most frequent in train), val accuracy 0.3333, macro-F1 0.0333"))
      << r.out;
  EXPECT_TRUE(has(r.out, "  val         3 windows from    2 documents: informative 1 imaginative 2")) << r.out;
  EXPECT_TRUE(has(r.out, "'informative' (most frequent in train), val accuracy 0.3333, macro-F1 0.2500")) << r.out;
  EXPECT_TRUE(fs::exists(data() + "/tasks/brown-mode/val.safetensors"));

  r = run("data tasks --data " + data() + " --window 4");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(has(r.out, "/tasks/brown-genre (up to date)")) << r.out;
  EXPECT_TRUE(has(r.out, "/tasks/brown-mode (up to date)")) << r.out;

  r = run("data tasks --help");
  EXPECT_EQ(r.rc, 0);
  EXPECT_TRUE(has(r.out, "--window") && has(r.out, "128")) << r.out;
}

TEST_F(DataTasksCli, BadOptionsAndUnpreparedDirectoriesAreOneLineErrors) {
  write_prepared(data(), fake_docs());
  one_line_error(run("data tasks --data " + data() + " --window 0"), "--window");
  one_line_error(run("data tasks --data " + data() + " --window 12x"), "--window");
  one_line_error(run("data tasks --data " + file("nowhere")), "prepare.json is missing");
  one_line_error(run("data tasks --data " + data() + " --bogus"), "--bogus");
  EXPECT_FALSE(fs::exists(data() + "/tasks"));
}
