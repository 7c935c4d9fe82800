// The end of `gannet compress` with task nxm_lm: the GPT student's validation perplexity as trained
// (its simulated forward) beside the f32 teacher's and, when every block product is dense, the
// packed model file (compress/nm_gpt_pack.h) and its perplexity on the inference engine's integer
// kernels, on the same windows.
#pragma once
#include <string>

#include "gannet/train/train_config.h"
#include "gannet/train/trainer.h"

namespace gannet::cli {

// The packed file's default name in the run directory.
inline constexpr const char* kLmStudentFile = "model.quantized.safetensors";

// Whether task nxm_lm's config packs a file (every block product dense).
bool lm_student_packs(const train::TrainConfig& cfg);

// Prints the perplexities; writes `out` (atomically) when lm_student_packs(cfg).
void finish_lm_student(const train::TrainConfig& cfg, const train::TrainResult& r, const std::string& out);

}  // namespace gannet::cli
