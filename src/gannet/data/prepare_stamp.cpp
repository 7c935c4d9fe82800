#include "gannet/data/prepare_stamp.h"

#include <cstdio>
#include <filesystem>

#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"

namespace gannet::data {

namespace fs = std::filesystem;
using json = nlohmann::json;

json input_fingerprint(const std::string& path) {
  std::error_code ec;
  GANNET_CHECK(fs::exists(path, ec), path, ": no such file");
  GANNET_CHECK(fs::is_regular_file(path, ec), path, ": not a regular file");
  const auto size = fs::file_size(path, ec);
  GANNET_CHECK(!ec, path, ": cannot read its size: ", ec.message());
  const auto mtime = fs::last_write_time(path, ec).time_since_epoch().count();
  return json{{"path", fs::absolute(path, ec).lexically_normal().string()}, {"size", (uint64_t)size},
              {"mtime", (int64_t)mtime}};
}

bool prepare_stamp_current(const std::string& dir, const json& options, const std::vector<std::string>& outputs) {
  const fs::path stamp_path = fs::path(dir) / "prepare.json";
  std::error_code ec;
  if (!fs::is_regular_file(stamp_path, ec)) return false;
  const json stamp = json::parse(read_file(stamp_path.string()), nullptr, /*allow_exceptions=*/false);
  if (!stamp.is_object() || stamp.value("options", json()) != options) return false;
  const json sizes = stamp.value("outputs", json());
  if (!sizes.is_object()) return false;
  for (const std::string& name : outputs) {
    if (!sizes.contains(name) || !sizes[name].is_number_unsigned()) return false;
    const auto size = fs::file_size(fs::path(dir) / name, ec);
    if (ec || size != sizes[name].get<uint64_t>()) return false;
  }
  return true;
}

std::optional<PreparedData> earlier_run_if_current(const std::string& dir, const json& options,
                                                   const std::vector<std::string>& outputs) {
  if (!prepare_stamp_current(dir, options, outputs)) return std::nullopt;
  PreparedData res;
  res.up_to_date = true;
  res.out_dir = dir;
  res.summary = json::parse(read_file((fs::path(dir) / "summary.json").string()), nullptr, false);
  std::fprintf(stderr, "[data] %s is up to date (prepare.json matches the options and inputs); nothing to do\n",
               dir.c_str());
  return res;
}

void invalidate_prepare_stamp(const std::string& dir) {
  std::error_code ec;
  fs::remove(fs::path(dir) / "prepare.json", ec);
  GANNET_CHECK(!ec, (fs::path(dir) / "prepare.json").string(), ": cannot remove: ", ec.message());
}

void write_prepare_stamp(const std::string& dir, const json& options, const std::vector<std::string>& outputs) {
  json sizes = json::object();
  for (const std::string& name : outputs) sizes[name] = (uint64_t)fs::file_size(fs::path(dir) / name);
  const json stamp = {{"options", options}, {"outputs", sizes}};
  write_file_atomic((fs::path(dir) / "prepare.json").string(), stamp.dump(2) + "\n");
}

}  // namespace gannet::data
