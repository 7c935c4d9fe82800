#include "gannet/cli/compress_command.h"

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "gannet/cli/compress_lm_student.h"
#include "gannet/cli/number_options.h"
#include "gannet/compress/low_bit_encoder_pack.h"
#include "gannet/compress/nm_encoder_pack.h"
#include "gannet/compress/nm_search.h"
#include "gannet/core/atomic_file.h"
#include "gannet/io/json_config.h"
#include "gannet/train/run_directory.h"
#include "gannet/compress/simulated_quant.h"
#include "gannet/io/safetensors.h"
#include "gannet/infer/encoder_engine.h"
#include "gannet/io/encoder_checkpoint.h"
#include "gannet/kernels/gemm.h"
#include "gannet/io/low_bit_encoder.h"
#include "gannet/train/classification_batches.h"
#include "gannet/train/evaluate.h"
#include "gannet/train/evaluate_encoder.h"
#include "gannet/train/prepared_token_files.h"
#include "gannet/io/checkpoint.h"
#include "gannet/train/trainer.h"

namespace gannet::cli {

namespace {
struct CompressArgs {
  std::string config;
  std::string output;  // default: <checkpoint.dir>/model.lowbit.safetensors
  bool resume = false;
  bool no_progress = false;
  int64_t stop_after = -1;
  int threads = 0;  // 0: OpenMP's default
};

double megabytes(double bytes) { return bytes / 1e6; }

// The encoder's block product weights in f32: what NxMiFormer's budget and sizes are against.
double block_product_f32_bytes(const models::EncoderConfig& c) {
  double bytes = 0;
  for (const auto& [name, shape] : io::low_bit_encoder_low_bit_shapes(c))
    if (!io::is_embedding_table(name)) bytes += 4.0 * (double)(shape[0] * shape[1]);
  return bytes;
}

// The XTC student packed into `path`; prints its size beside the teacher's f32 weights.
void pack_xtc_student(const train::TrainConfig& cfg, const std::string& checkpoint, const std::string& path) {
  models::Encoder student(io::read_encoder_checkpoint_config(checkpoint));
  io::load_encoder_checkpoint(checkpoint, student, nullptr, nullptr);
  const io::LowBitEncoder packed =
      compress::pack_low_bit_encoder(student, cfg.xtc.weights, cfg.xtc.embedding_spec(), cfg.xtc.scheme());
  io::save_low_bit_encoder(path, packed);
  const double teacher_bytes = 4.0 * (double)nn::count_elements(models::Encoder(cfg.encoder).parameters());
  const double file_bytes = (double)std::filesystem::file_size(path);
  const io::LowBitEncoder::Bytes b = packed.bytes();
  std::printf("packed: %s (%s, %ld layers)\n", path.c_str(), cfg.xtc.scheme().c_str(),
              (long)student.config().n_layer);
  std::printf("size: %.3f MB file (products %.3f, embeddings %.3f, f32 rest %.3f MB) against the teacher's f32 "
              "weights %.3f MB: %.1fx smaller\n",
              megabytes(file_bytes), megabytes((double)b.products), megabytes((double)b.embeddings),
              megabytes((double)b.dense), megabytes(teacher_bytes), teacher_bytes / file_bytes);
}

// The N:M student packed into `path` with the masks its checkpoint holds; prints its size beside
// the teacher's f32 weights, whole and the block products alone.
void pack_nm_student(const train::TrainConfig& cfg, const std::string& checkpoint, const std::string& path) {
  models::Encoder student(io::read_encoder_checkpoint_config(checkpoint));
  io::load_encoder_checkpoint(checkpoint, student, nullptr, nullptr);
  const std::vector<std::array<compress::NmProductForm, 4>> forms = cfg.nxm.resolve(student.config().n_layer);
  std::map<std::string, Tensor> masks;
  const io::SafeTensors file = io::SafeTensors::open(checkpoint);
  for (int64_t l = 0; l < student.config().n_layer; ++l)
    for (int p = 0; p < 4; ++p) {
      const std::string product = str("h.", l, ".", compress::kBlockProducts[(size_t)p]);
      if (forms[(size_t)l][(size_t)p].pattern) masks.emplace(product, file.get("task.nm.mask." + product));
    }
  const io::NmSparseEncoder packed = compress::pack_nm_sparse_encoder(student, forms, masks);
  io::save_nm_sparse_encoder(path, packed);
  const double teacher_bytes = 4.0 * (double)nn::count_elements(models::Encoder(cfg.encoder).parameters());
  const double product_f32 = block_product_f32_bytes(cfg.encoder);
  const double file_bytes = (double)std::filesystem::file_size(path);
  const io::NmSparseEncoder::Bytes b = packed.bytes();
  std::printf("packed: %s (%s)\n", path.c_str(), cfg.nxm.describe().c_str());
  std::printf("size: %.3f MB file (block products %.3f MB, f32 rest %.3f MB) against the teacher's f32 weights "
              "%.3f MB: %.1fx smaller; block products %.1fx smaller than f32 (%.3f MB)\n",
              megabytes(file_bytes), megabytes((double)b.products), megabytes((double)b.dense),
              megabytes(teacher_bytes), teacher_bytes / file_bytes, product_f32 / (double)b.products,
              megabytes(product_f32));
}

// Windows spread evenly over the training split: the search's calibration set.
std::pair<Tensor, Tensor> calibration_windows(const train::TrainConfig& cfg, int64_t count) {
  const data::ClassificationSet train = train::open_classification_split(cfg, cfg.encoder, "train");
  const int64_t n = std::min(count, train.size()), T = train.window;
  Tensor tokens = Tensor::empty({n, T}, DType::i32), mask = Tensor::empty({n, T}, DType::u8);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t from = i * train.size() / n;
    std::memcpy(tokens.data<int32_t>() + i * T, train.tokens.data<int32_t>() + from * T, T * sizeof(int32_t));
    std::memcpy(mask.data<uint8_t>() + i * T, train.mask.data<uint8_t>() + from * T, T);
  }
  return {tokens, mask};
}

// The search's forms (compress/nm_search.h): those a resumed run saved in <out_dir>/nm_search.json,
// or a new search's, printed as a table and saved there before training starts.
std::vector<std::array<compress::NmProductForm, 4>> searched_forms(const train::TrainConfig& cfg, bool resume) {
  const std::string path = (std::filesystem::path(cfg.out_dir) / "nm_search.json").string();
  const int64_t L = cfg.encoder.n_layer, group = cfg.nxm.quant_group_size;
  if (resume && std::filesystem::exists(path)) {
    std::printf("search: the forms %s holds\n", path.c_str());
    return compress::nm_forms_from_json(io::parse_json_text(read_file(path), path), L, group, path);
  }
  train::prepare_run_directory(cfg, resume);  // refuses an earlier run before anything is written
  models::Encoder teacher(cfg.encoder);
  io::load_encoder_checkpoint(cfg.teacher_checkpoint, teacher, nullptr, nullptr);
  std::vector<compress::NmProductForm> choices;
  for (const std::string& c : cfg.nxm.search.choices)
    choices.push_back(compress::parse_nm_choice(c, group, "compression_training.sparse_pruning.search.choices"));
  const double f32_bytes = block_product_f32_bytes(cfg.encoder);
  const auto [tokens, mask] = calibration_windows(cfg, cfg.nxm.search.calibration_windows);
  std::printf("search: %zu choices for %ld products on %ld calibration windows, budget f32 / %g\n", choices.size(),
              (long)(4 * L), (long)tokens.dim(0), cfg.nxm.search.budget_ratio);
  std::fflush(stdout);
  const compress::NmSearchTable table = compress::search_nm_forms(
      teacher, tokens, mask, choices, (int64_t)std::floor(f32_bytes / cfg.nxm.search.budget_ratio));
  std::printf("%s", table.describe().c_str());
  std::filesystem::create_directories(cfg.out_dir);
  write_file_atomic(path, compress::nm_forms_to_json(table.forms()).dump(2) + "\n");
  return table.forms();
}

// The packed file read back and run by its engine on the validation windows, beside the f32
// teacher on the same windows.
void report_packed_accuracy(const train::TrainConfig& cfg, const std::string& path) {
  const data::ClassificationSet val = train::open_classification_split(cfg, cfg.encoder, "val");
  std::string scheme;
  infer::EncoderEngine engine = [&] {
    if (cfg.task == "nxm") {
      scheme = "N:M";
      return infer::EncoderEngine::nm_sparse(io::read_nm_sparse_encoder(path));
    }
    const io::LowBitEncoder packed = io::read_low_bit_encoder(path);
    scheme = packed.scheme;
    return infer::EncoderEngine::low_bit(packed);
  }();
  const train::ClassifierEval s = train::evaluate_classifier(
      [&](const Tensor& t, const Tensor& m) { return engine.logits(t, m); }, val, cfg.micro_batch, 0);
  models::Encoder teacher(cfg.encoder);
  io::load_encoder_checkpoint(cfg.teacher_checkpoint, teacher, nullptr, nullptr);
  const train::ClassifierEval t = train::evaluate_classifier(teacher, val, cfg.micro_batch, 0);
  std::printf("accuracy on %ld windows of %s val: packed %s %.2f%% (macro-F1 %.2f%%), teacher f32 %.2f%% "
              "(macro-F1 %.2f%%): %+.2f points\n",
              (long)val.size(), val.task.c_str(), scheme.c_str(), 100 * s.confusion.accuracy(),
              100 * s.confusion.macro_f1(), 100 * t.confusion.accuracy(), 100 * t.confusion.macro_f1(),
              100 * (s.confusion.accuracy() - t.confusion.accuracy()));
}

void run(const CompressArgs& a) {
  if (a.threads > 0) kernels::set_num_threads(a.threads);
  train::TrainConfig cfg = train::read_train_config(a.config);
  GANNET_CHECK(cfg.task == "xtc" || cfg.task == "nxm" || cfg.task == "nxm_lm", a.config,
               ": gannet compress runs task \"xtc\", \"nxm\" and \"nxm_lm\" configs (this one is \"", cfg.task,
               "\": use gannet train)");
  GANNET_CHECK(cfg.task != "nxm_lm" || !cfg.nxm.search.enabled, a.config, ": task \"nxm_lm\" has no search");
  GANNET_CHECK(cfg.task != "nxm_lm" || a.output.empty() || lm_student_packs(cfg), a.config,
               ": --output: task \"nxm_lm\" packs dense products only (the decode engine has no N:M form yet)");
  const char* file = cfg.task == "xtc"      ? "model.lowbit.safetensors"
                     : cfg.task == "nxm_lm" ? kLmStudentFile
                                            : "model.nm.safetensors";
  const std::string out = a.output.empty() ? (std::filesystem::path(cfg.out_dir) / file).string() : a.output;
  if (cfg.task != "xtc" && cfg.nxm.search.enabled) cfg.nxm.searched = searched_forms(cfg, a.resume);
  train::TrainOptions opt;
  opt.resume = a.resume;
  opt.progress = !a.no_progress;
  opt.stop_after = a.stop_after;
  const train::TrainResult r = train::run_training(cfg, opt);
  if (r.interrupted) std::exit(130);
  if (r.rank != 0) return;
  if (r.steps_done < cfg.steps) {
    std::printf("stopped at step %ld of %ld; checkpoint %s (resume with --resume)\n", (long)r.steps_done,
                (long)cfg.steps, r.checkpoint.c_str());
    return;
  }
  if (r.steps_run > 0)
    std::printf("final: step %ld, distillation loss %.4f", (long)r.steps_done, r.final_train_loss);
  else
    std::printf("final: step %ld (finished before this run)", (long)r.steps_done);
  std::printf("%s (simulated)\ncheckpoint: %s\n", r.validation.listed().c_str(), r.checkpoint.c_str());
  if (cfg.task == "nxm_lm") return finish_lm_student(cfg, r, out);
  if (cfg.task == "xtc") pack_xtc_student(cfg, r.checkpoint, out);
  else pack_nm_student(cfg, r.checkpoint, out);
  report_packed_accuracy(cfg, out);
}
}  // namespace

void add_compress_command(CLI::App& app) {
  auto args = std::make_shared<CompressArgs>();
  CLI::App* cmd = app.add_subcommand(
      "compress", "XTC or NxMiFormer: distil a binary/ternary (task xtc; configs/xtc_*.json) or N:M sparse int8/int4 "
                  "(task nxm; configs/nxm_*.json) student from a fine-tuned encoder, or a quantized (task nxm_lm) "
                  "student from a GPT, and pack it into a model file");
  cmd->add_option("--config,-c", args->config,
                  "compression config (JSON: a training config with task xtc, nxm or nxm_lm)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--output,-o", args->output,
                  "packed model file (default: <checkpoint.dir>/model.lowbit.safetensors, model.nm.safetensors, or for "
                  "nxm_lm model.quantized.safetensors)");
  cmd->add_flag("--resume", args->resume, "continue from the checkpoint in checkpoint.dir");
  cmd->add_flag("--no-progress", args->no_progress, "no progress bar");
  cmd->add_option("--stop-after", args->stop_after, "stop after this many steps, with a checkpoint (for testing)")
      ->check(number_in<int64_t>(NumberRange::at_least(0)));
  add_threads_option(cmd, args->threads);
  cmd->callback([args]() { run(*args); });
}

}  // namespace gannet::cli
