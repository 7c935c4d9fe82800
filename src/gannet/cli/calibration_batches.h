// Calibration text for the compression commands: random windows of a token file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gannet/core/tensor.h"
#include "gannet/models/gpt.h"

namespace gannet::cli {

// n batches of B windows of T tokens each (i32 [B, T]), from random places of the token file at
// `path` (seeded). One-line errors on a file whose vocabulary exceeds the model's or that holds no
// whole window.
std::vector<Tensor> file_batches(const std::string& path, const models::GptConfig& c, int64_t n, int64_t B,
                                 int64_t T, uint64_t seed);

}  // namespace gannet::cli
