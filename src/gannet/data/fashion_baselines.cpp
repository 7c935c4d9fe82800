#include "gannet/data/fashion_baselines.h"

#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"

namespace gannet::data {

namespace {
std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r"), b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// A markdown row's cells: "| a | b |" -> {"a", "b"}.
std::vector<std::string> cells(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream in(trim(line));
  std::string cell;
  while (std::getline(in, cell, '|')) out.push_back(trim(cell));
  if (!out.empty() && out.front().empty()) out.erase(out.begin());
  return out;
}

// A gzip file's text ("" when absent or unreadable: the note is optional).
std::string read_gz(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return "";
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return "";
  std::string text;
  char buf[1 << 14];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) text.append(buf, (size_t)n);
  gzclose(f);
  return n < 0 ? "" : text;
}
}  // namespace

std::vector<FashionBaseline> parse_fashion_benchmark_table(const std::string& markdown) {
  std::vector<FashionBaseline> out;
  std::stringstream in(markdown);
  std::string line;
  int column = -1;
  while (std::getline(in, line)) {
    const std::string t = trim(line);
    if (t.empty() || t[0] != '|') {
      column = -1;  // the table ended
      continue;
    }
    const std::vector<std::string> c = cells(t);
    if (column < 0) {
      for (size_t i = 0; i < c.size(); ++i)
        if (c[i] == "Fashion test accuracy") column = (int)i;
      continue;
    }
    if ((int)c.size() <= column || c[0].empty() || c[0].rfind("---", 0) == 0) continue;
    char* end = nullptr;
    const double a = std::strtod(c[(size_t)column].c_str(), &end);
    if (end == c[(size_t)column].c_str() || *end != '\0' || !(a > 0 && a <= 1)) continue;
    out.push_back({c[0], c.size() > 1 ? c[1] : "", a});
  }
  return out;
}

FashionBaselines read_fashion_baselines(const std::string& doc_dir) {
  FashionBaselines b;
  const std::string json_path = doc_dir + "/benchmark/baselines.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(json_path, ec)) return b;
  const nlohmann::json j = nlohmann::json::parse(read_file(json_path), nullptr, false);
  GANNET_CHECK(j.is_object() && j.contains("classifiers") && j["classifiers"].is_object(), json_path,
               ": not the benchmark's baselines ({\"classifiers\": {name: [parameter grids]}})");
  b.found = true;
  for (const auto& item : j["classifiers"].items()) b.grid_classifiers.push_back(item.key());
  b.scores = parse_fashion_benchmark_table(read_gz(doc_dir + "/README.md.gz"));
  return b;
}

}  // namespace gannet::data
