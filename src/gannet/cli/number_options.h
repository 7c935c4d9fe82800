// Range checks for numeric command-line options. Each option states the values it takes, so that
// `--seq-len -5`, `--top-p nan` or `--max-tokens 99999999999999999999` is a one-line error naming
// the option ("--seq-len: must be >= 0, got -5") rather than a value taken as given, wrapped or
// clamped by the conversion.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>

#include "gannet/core/number_range.h"

namespace gannet::cli {

// The text must be a T (an integer for integral T: no fraction, no overflow; finite for floating
// T) and lie in `range`. The range is shown in --help.
template <class T>
CLI::Validator number_in(const NumberRange& range);

// The most sequences (windows) one batch may hold: far above any CPU run, far below sizes whose
// products with a sequence length and a vocabulary would overflow.
constexpr int64_t kMaxBatchOption = 1 << 20;

// --threads,-t: threads for OpenMP and OpenBLAS, 0 = all cores (at most kernels::kMaxThreads).
CLI::Option* add_threads_option(CLI::App* cmd, int& threads);

}  // namespace gannet::cli
