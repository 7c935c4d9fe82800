#include "gannet/data/docs_table.h"

#include <set>
#include <sstream>

#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"
#include "gannet/core/parse_number.h"

namespace gannet::data {

namespace {

constexpr const char* kHeader = "id\tgenre\tsplit\ttoken_offset\ttoken_count";

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (;;) {
    const size_t tab = line.find('\t', start);
    fields.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return fields;
    start = tab + 1;
  }
}

DocRow parse_row(const std::string& line, const std::string& where) {
  const std::vector<std::string> f = split_tabs(line);
  GANNET_CHECK(f.size() == 5, where, ": expected 5 tab-separated fields, got ", f.size());
  DocRow r;
  r.id = f[0];
  GANNET_CHECK(!r.id.empty(), where, ": empty document id");
  GANNET_CHECK(f[1].size() == 1, where, ": genre ", quote_text(f[1]), " is not one letter");
  r.genre = f[1][0];
  GANNET_CHECK(f[2] == "train" || f[2] == "val", where, ": split ", quote_text(f[2]), " is not train or val");
  r.val = f[2] == "val";
  try {
    r.offset = parse_int64(f[3], "token_offset");
    r.count = parse_int64(f[4], "token_count");
  } catch (const Error& e) {
    fail(str(where, ": ", e.what()));
  }
  GANNET_CHECK(r.offset >= 0, where, ": token_offset ", r.offset, " is negative");
  GANNET_CHECK(r.count >= 1, where, ": token_count ", r.count, " is below 1 (it includes the eos)");
  return r;
}

}  // namespace

std::vector<DocRow> read_docs_table(const std::string& path) {
  std::istringstream is(read_file(path));
  std::string line;
  GANNET_CHECK(std::getline(is, line) && line == kHeader, path, ": line 1 is not the header 'id, genre, split, ",
               "token_offset, token_count' (tab-separated)");
  std::vector<DocRow> rows;
  std::set<std::string> ids;
  for (int64_t n = 2; std::getline(is, line); ++n) {
    DocRow r = parse_row(line, str(path, ": line ", n));
    GANNET_CHECK(ids.insert(r.id).second, path, ": line ", n, ": document ", quote_text(r.id), " appears twice");
    rows.push_back(std::move(r));
  }
  GANNET_CHECK(!rows.empty(), path, ": no documents");
  return rows;
}

}  // namespace gannet::data
