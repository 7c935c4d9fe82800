// What Debian's dataset-fashion-mnist ships about other classifiers' Fashion-MNIST accuracy, to
// print beside ours. benchmark/baselines.json is the upstream scikit-learn benchmark's input: the
// classifiers and their parameter grids ({"common": {}, "classifiers": {name: [grid, ...]}}), with
// no scores (those were published on a web page the package does not ship). The scores it does
// ship are the README's table of submitted benchmarks ("Fashion test accuracy", not re-tested by
// the authors), read from README.md.gz.
#pragma once
#include <string>
#include <vector>

namespace gannet::data {

inline constexpr const char* kFashionMnistDocDir = "/usr/share/doc/dataset-fashion-mnist";

struct FashionBaseline {
  std::string classifier, preprocessing;
  double accuracy = 0;  // Fashion-MNIST test accuracy in [0, 1]
};

struct FashionBaselines {
  bool found = false;                          // baselines.json was read
  std::vector<std::string> grid_classifiers;   // baselines.json's classifiers, sorted by name
  std::vector<FashionBaseline> scores;         // the README's table, in file order (empty without it)
};

// Reads DIR/benchmark/baselines.json and DIR/README.md.gz; absent files give found = false /
// no scores. A baselines.json that is not of the structure above is a one-line error naming it.
FashionBaselines read_fashion_baselines(const std::string& doc_dir = kFashionMnistDocDir);
// The rows of a README's benchmark table (markdown rows after a header with a "Fashion test
// accuracy" column); rows whose accuracy is not a number in (0, 1] are skipped.
std::vector<FashionBaseline> parse_fashion_benchmark_table(const std::string& markdown);

}  // namespace gannet::data
