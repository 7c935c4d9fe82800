// The stamp that makes `gannet data prepare` idempotent for the image-text data sets (glyphs,
// fashion-mnist): DIR/prepare.json records the options (with the input files' fingerprints) and
// every output's size; it is written last, so a run that stopped half-way is simply redone.
// (The Brown preparation keeps its own stamp of the same shape, in prepare.cpp.)
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace gannet::data {

// What a prepare run did, and the summary it wrote as DIR/summary.json (counts per split, image
// size, classes or blocks, examples).
struct PreparedData {
  bool up_to_date = false;  // the stamp matched: nothing was read or written
  std::string out_dir;
  nlohmann::json summary;
};

// An input file as the outputs depend on it: absolute path, size and modification time (a
// package upgrade changes one of them). Throws a one-line gannet::Error when it is missing or not
// a regular file, so that a missing input is reported before anything is written.
nlohmann::json input_fingerprint(const std::string& path);

// True when DIR/prepare.json records exactly `options` and each of `outputs` (names in DIR)
// exists with its recorded size.
bool prepare_stamp_current(const std::string& dir, const nlohmann::json& options,
                           const std::vector<std::string>& outputs);

// The earlier run's result when prepare_stamp_current holds (its summary.json read back), after
// saying on stderr that there is nothing to do; nothing otherwise.
std::optional<PreparedData> earlier_run_if_current(const std::string& dir, const nlohmann::json& options,
                                                   const std::vector<std::string>& outputs);

// Removes DIR/prepare.json: from then on the outputs are not valid until write_prepare_stamp.
void invalidate_prepare_stamp(const std::string& dir);

// Writes DIR/prepare.json (atomically) with `options` and the sizes of `outputs` as they are now.
void write_prepare_stamp(const std::string& dir, const nlohmann::json& options,
                         const std::vector<std::string>& outputs);

}  // namespace gannet::data
