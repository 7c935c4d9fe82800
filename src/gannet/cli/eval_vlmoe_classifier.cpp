#include "gannet/cli/eval_vlmoe_classifier.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "gannet/cli/vlmoe_model.h"
#include "gannet/core/error.h"
#include "gannet/data/fashion_baselines.h"
#include "gannet/data/image_classes.h"
#include "gannet/io/vlmoe_classifier_checkpoint.h"
#include "gannet/train/evaluate_vlmoe_classifier.h"
#include "gannet/train/zero_shot_classify.h"

namespace gannet::cli {

namespace {

void check_data_dir(const std::string& model_path, const std::string& data_dir, const char* what) {
  std::error_code ec;
  GANNET_CHECK(std::filesystem::is_directory(data_dir, ec), model_path, " is ", what,
               ": --data must be a prepared data directory (from `gannet data prepare --dataset ...`), not ", data_dir);
}

void print_per_class(const metrics::ConfusionMatrix& confusion, const std::vector<std::string>& classes) {
  std::printf("%-14s %6s %9s\n", "class", "images", "accuracy");
  for (int c = 0; c < confusion.num_classes(); ++c)
    std::printf("%-14s %6ld %8.2f%%\n", classes[(size_t)c].c_str(), (long)confusion.true_count(c),
                100 * train::class_accuracy(confusion, c));
}

// The package's baselines beside a Fashion-MNIST test accuracy: the best of the README's table and a
// few classic ones by name; one note line where the package is absent.
void print_fashion_baselines() {
  const data::FashionBaselines b = data::read_fashion_baselines();
  if (!b.found) {
    std::printf("(baselines: %s/benchmark/baselines.json not installed; apt install dataset-fashion-mnist)\n",
                data::kFashionMnistDocDir);
    return;
  }
  std::printf("baselines (Debian dataset-fashion-mnist): baselines.json lists %zu scikit-learn classifiers' parameter "
              "grids, without scores\n",
              b.grid_classifiers.size());
  if (b.scores.empty()) return;
  const auto best = std::max_element(b.scores.begin(), b.scores.end(),
                                     [](const data::FashionBaseline& x, const data::FashionBaseline& y) {
                                       return x.accuracy < y.accuracy;
                                     });
  std::printf("  its README's submitted benchmarks (%zu, test accuracy, not re-tested upstream): best %.2f%% %s",
              b.scores.size(), 100 * best->accuracy, best->classifier.c_str());
  for (const char* name : {"HOG+SVM", "XgBoost", "MLP 256-128-100", "Human Performance"})
    for (const data::FashionBaseline& s : b.scores)
      if (s.classifier == name) {
        std::printf("; %s %.2f%%", name, 100 * s.accuracy);
        break;
      }
  std::printf("\n");
}

}  // namespace

bool is_vlmoe_classifier_model(const std::string& path) { return io::is_vlmoe_classifier_checkpoint(path); }

bool is_image_classes_dir(const std::string& dir) {
  return data::image_class_format(dir) == data::kImageClassesFormat;
}

void eval_vlmoe_classifier(const std::string& model_path, const std::string& data_dir, int64_t batch,
                           int64_t max_batches) {
  check_data_dir(model_path, data_dir, "a VL-MoE image classifier");
  const io::VlMoeClassifierInfo info = io::read_vlmoe_classifier_info(model_path);
  const std::string format = data::image_class_format(data_dir);
  GANNET_CHECK(format == info.data_format, data_dir, " holds ", format.empty() ? "no prepared train split" : format,
               ", the classifier was trained on ", info.data_format);
  const data::ImageClassSet set = data::load_image_class_split(data_dir, data::image_class_eval_split(format));
  GANNET_CHECK(set.classes == info.classes, data_dir, "/", set.split, ": its ", set.num_classes(),
               " classes are not the classifier's ", info.n_classes);
  models::VlMoeClassifier model(info.config, info.n_classes);
  io::load_vlmoe_classifier_checkpoint(model_path, model, nullptr, nullptr);
  const train::ImageClassifierEval e = train::evaluate_vlmoe_classifier(model, set, batch, max_batches * batch);
  std::printf("%-12s %6s %8s %9s %9s\n", "split", "images", "loss", "accuracy", "macro-F1");
  std::printf("%-12s %6ld %8.4f %8.2f%% %8.2f%%\n", set.split.c_str(), (long)e.images, e.loss,
              100 * e.confusion.accuracy(), 100 * train::macro_f1_present(e.confusion));
  if (set.glyphs()) {
    std::printf("(%s: Unicode blocks of %d in all; macro-F1 over the blocks present in the split)\n",
                set.split.c_str(), set.num_classes());
    return;
  }
  print_per_class(e.confusion, set.classes);
  print_fashion_baselines();
}

void eval_vlmoe_zero_shot(const std::string& model_path, const std::string& data_dir, int64_t batch,
                          int64_t max_batches) {
  check_data_dir(model_path, data_dir, "a VL-MoE");
  const LoadedVlMoe m = load_vlmoe(model_path);
  const data::ImageClassSet set = data::load_image_class_split(data_dir, "test");
  GANNET_CHECK(set.images.dim(1) == m.model->config().image_size, data_dir, "/test.safetensors: images are ",
               set.images.dim(1), "x", set.images.dim(2), ", ", model_path, "'s image_size is ",
               m.model->config().image_size);
  const train::ZeroShotResult r =
      train::zero_shot_classify(*m.model, m.tokenizer, set.images, set.labels, set.classes, batch, max_batches * batch);
  std::printf("zero-shot: each test image against the %d class names' texts, by the cosine of the ITC projections\n",
              set.num_classes());
  std::printf("%-12s %6s %9s %9s\n", "split", "images", "accuracy", "macro-F1");
  std::printf("%-12s %6ld %8.2f%% %8.2f%%\n", set.split.c_str(), (long)r.confusion.total(),
              100 * r.confusion.accuracy(), 100 * train::macro_f1_present(r.confusion));
  print_per_class(r.confusion, set.classes);
  print_fashion_baselines();
}

}  // namespace gannet::cli
