#include "gannet/train/trainer.h"

#include <algorithm>
#include <filesystem>

#include <omp.h>

#include "gannet/dist/world.h"
#include "gannet/io/sharded_checkpoint.h"
#include "gannet/kernels/gemm.h"
#include "gannet/train/classify_task.h"
#include "gannet/train/gpt_task.h"
#include "gannet/train/graph_task.h"
#include "gannet/train/mlm_task.h"
#include "gannet/train/nm_lm_task.h"
#include "gannet/train/nm_task.h"
#include "gannet/train/vlmoe_classify_task.h"
#include "gannet/train/vlmoe_task.h"
#include "gannet/train/xtc_task.h"

namespace gannet::train {

std::string checkpoint_path(const TrainConfig& config) {
  return (std::filesystem::path(config.out_dir) / "checkpoint.safetensors").string();
}

std::string sharded_checkpoint_dir(const TrainConfig& config) {
  return (std::filesystem::path(config.out_dir) / "checkpoint").string();
}

std::string find_checkpoint(const TrainConfig& config) {
  namespace fs = std::filesystem;
  const std::string whole = checkpoint_path(config);
  const std::string manifest = (fs::path(sharded_checkpoint_dir(config)) / io::kManifestFile).string();
  std::error_code ew, es;
  const auto tw = fs::last_write_time(whole, ew), ts = fs::last_write_time(manifest, es);
  if (ew && es) return "";
  if (ew) return manifest;
  if (es) return whole;
  return ts > tw ? manifest : whole;
}

TrainResult run_training(const TrainConfig& cfg, const TrainOptions& opt) {
  if (cfg.threads > 0) kernels::set_num_threads(cfg.threads);
  else if (dist::local_process_count() > 1)  // the cores shared among this machine's processes
    kernels::set_num_threads(std::max(1, omp_get_num_procs() / dist::local_process_count()));
  std::unique_ptr<TrainTask> task = cfg.task == "mlm"        ? make_mlm_task(cfg)
                                    : cfg.task == "classify" ? make_classify_task(cfg)
                                    : cfg.task == "xtc"      ? make_xtc_task(cfg)
                                    : cfg.task == "nxm"      ? make_nm_task(cfg)
                                    : cfg.task == "nxm_lm"   ? make_nm_lm_task(cfg)
                                    : cfg.task == "graph"    ? make_graph_task(cfg)
                                    : cfg.task == "vlmoe"    ? make_vlmoe_task(cfg)
                                    : cfg.task == "vlmoe_classify" ? make_vlmoe_classify_task(cfg)
                                                             : make_gpt_task(cfg);
  TrainResult result = run_task(*task, cfg, opt);
  const Figures& v = result.validation;
  for (size_t i = 0; i < v.keys.size(); ++i) {
    if (v.keys[i] == "val_loss") result.val_loss = v.values[i];
    if (v.keys[i] == "val_ppl") result.val_perplexity = v.values[i];
  }
  return result;
}

}  // namespace gannet::train
