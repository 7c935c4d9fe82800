// What the libFuzzer harnesses share: a scratch directory of their own, writing the input to a file
// there (the loaders read paths), splitting one input into several files, and the oracle.
//
// The oracle: an input may be refused only by a gannet::Error (the one-line message the CLI prints
// and the server answers with 400). Any other exception escapes the harness and libFuzzer reports it
// as a crash ("deadly signal" after std::terminate), as it does a sanitizer report, a timeout, or
// memory beyond -rss_limit_mb / -malloc_limit_mb.
#pragma once
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "gannet/core/error.h"

namespace gannet::fuzz {

// Parts of an input that feeds several files, separated by this line (a seed is its files joined).
inline constexpr std::string_view kSplit = "\n#--gannet-fuzz-split--#\n";

inline std::vector<std::string> split_input(const uint8_t* data, size_t size, size_t max_parts) {
  std::vector<std::string> parts;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  while (parts.size() + 1 < max_parts) {
    const size_t at = rest.find(kSplit);
    if (at == std::string_view::npos) break;
    parts.emplace_back(rest.substr(0, at));
    rest.remove_prefix(at + kSplit.size());
  }
  parts.emplace_back(rest);
  parts.resize(max_parts);
  return parts;
}

// A directory of this process's own (libFuzzer's -jobs / -workers run several at once).
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::filesystem::path d = std::filesystem::path(base && *base ? base : "/tmp") /
                              ("gannet-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::string write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), (std::streamsize)bytes.size());
  f.close();
  if (!f) std::abort();  // the harness's own failure, not the input's
  return path.string();
}

// Runs `f`, letting only gannet::Error through as the input's refusal.
template <class F>
void expect_clean_errors(F&& f) {
  try {
    f();
  } catch (const gannet::Error&) {
  }
}

}  // namespace gannet::fuzz
