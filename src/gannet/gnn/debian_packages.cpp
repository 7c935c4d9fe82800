#include "gannet/gnn/debian_packages.h"

#include <unordered_map>

#include "gannet/core/error.h"
#include "gannet/core/parse_number.h"

namespace gannet::gnn {

namespace {

bool is_blank_char(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (is_blank_char(s.front()) || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (is_blank_char(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool equals_lowercase(std::string_view key, std::string_view lower) {
  if (key.size() != lower.size()) return false;
  for (size_t i = 0; i < key.size(); ++i)
    if ((key[i] >= 'A' && key[i] <= 'Z' ? char(key[i] - 'A' + 'a') : key[i]) != lower[i]) return false;
  return true;
}

// The package name of one alternative: up to a version constraint, architecture list, build
// profile or blank, without its ":arch" qualifier.
std::string_view alternative_name(std::string_view alt) {
  alt = trim(alt);
  size_t end = 0;
  while (end < alt.size() && !is_blank_char(alt[end]) && alt[end] != '(' && alt[end] != '[' && alt[end] != '<') ++end;
  std::string_view name = alt.substr(0, end);
  return name.substr(0, name.find(':'));
}

// Reads stanzas line by line; parse_dumpavail's two front ends feed it.
class StanzaReader {
 public:
  void line(std::string_view text);
  DebianArchive finish() {
    end_stanza();
    return std::move(archive_);
  }

 private:
  void field(std::string_view key, std::string_view value);
  void end_stanza();

  DebianArchive archive_;
  std::unordered_map<std::string, size_t> index_;  // name -> position in archive_.packages
  int64_t line_no_ = 0;
  // The stanza being read.
  bool open_ = false, in_field_ = false;
  DebianPackage pkg_;
  std::string depends_, pre_depends_, recommends_, provides_;  // relation text, continuations joined
  std::string* continued_ = nullptr;  // where the current field's continuation lines go, if kept
};

void StanzaReader::line(std::string_view text) {
  ++line_no_;
  if (trim(text).empty()) return end_stanza();
  if (is_blank_char(text.front())) {
    GANNET_CHECK(in_field_, "dumpavail line ", line_no_, ": continuation line outside a field: ",
                 quote_text(text));
    if (continued_) *continued_ += str(" ", trim(text));
    return;
  }
  const size_t colon = text.find(':');
  GANNET_CHECK(colon != std::string_view::npos && colon > 0, "dumpavail line ", line_no_,
               ": expected 'Field: value', got ", quote_text(text));
  open_ = in_field_ = true;
  field(text.substr(0, colon), trim(text.substr(colon + 1)));
}

void StanzaReader::field(std::string_view key, std::string_view value) {
  continued_ = nullptr;
  std::string* relation = nullptr;
  if (equals_lowercase(key, "package")) {
    pkg_.name = value;
  } else if (equals_lowercase(key, "version")) {
    pkg_.version = value;
  } else if (equals_lowercase(key, "architecture")) {
    pkg_.architecture = value;
  } else if (equals_lowercase(key, "section")) {
    pkg_.section = value;
  } else if (equals_lowercase(key, "description")) {
    pkg_.description = value;  // the synopsis; the long description's lines are not kept
  } else if (equals_lowercase(key, "depends")) {
    relation = &depends_;
  } else if (equals_lowercase(key, "pre-depends")) {
    relation = &pre_depends_;
  } else if (equals_lowercase(key, "recommends")) {
    relation = &recommends_;
  } else if (equals_lowercase(key, "provides")) {
    relation = &provides_;
  }
  if (relation) {
    *relation = value;
    continued_ = relation;
  }
}

void StanzaReader::end_stanza() {
  if (!open_) return;
  if (pkg_.name.empty()) {
    ++archive_.nameless;
  } else {
    ++archive_.stanzas;
    pkg_.depends = parse_relations(depends_);
    pkg_.pre_depends = parse_relations(pre_depends_);
    pkg_.recommends = parse_relations(recommends_);
    for (const Alternatives& group : parse_relations(provides_))
      pkg_.provides.insert(pkg_.provides.end(), group.begin(), group.end());
    auto [it, inserted] = index_.emplace(pkg_.name, archive_.packages.size());
    if (inserted) {
      archive_.packages.push_back(std::move(pkg_));
    } else {
      ++archive_.duplicates;
      DebianPackage& kept = archive_.packages[it->second];
      if (compare_debian_versions(pkg_.version, kept.version) > 0) kept = std::move(pkg_);
    }
  }
  open_ = in_field_ = false;
  continued_ = nullptr;
  pkg_ = DebianPackage();
  depends_.clear(), pre_depends_.clear(), recommends_.clear(), provides_.clear();
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// dpkg's weight of a character in a non-digit run: '~' below the end of the string, letters
// below the other symbols.
int order(char c) {
  if (is_alpha(c)) return (unsigned char)c;
  if (c == '~') return -1;
  return (unsigned char)c + 256;
}

// dpkg's verrevcmp: alternating non-digit runs (by order()) and digit runs (numerically).
int compare_fragments(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    while ((i < a.size() && !is_digit(a[i])) || (j < b.size() && !is_digit(b[j]))) {
      const int ac = i < a.size() && !is_digit(a[i]) ? order(a[i]) : 0;
      const int bc = j < b.size() && !is_digit(b[j]) ? order(b[j]) : 0;
      if (ac != bc) return ac - bc;
      ++i, ++j;
    }
    while (i < a.size() && a[i] == '0') ++i;
    while (j < b.size() && b[j] == '0') ++j;
    int first_diff = 0;
    while (i < a.size() && is_digit(a[i]) && j < b.size() && is_digit(b[j])) {
      if (!first_diff) first_diff = a[i] - b[j];
      ++i, ++j;
    }
    if (i < a.size() && is_digit(a[i])) return 1;
    if (j < b.size() && is_digit(b[j])) return -1;
    if (first_diff) return first_diff;
  }
  return 0;
}

struct Version {
  int64_t epoch = 0;
  std::string_view upstream, revision;
};

Version split_version(std::string_view v) {
  Version r;
  const size_t colon = v.find(':');
  if (colon != std::string_view::npos) {
    // A malformed epoch (not a number) sorts as 0 rather than failing the whole parse.
    for (char c : v.substr(0, colon)) {
      if (!is_digit(c) || r.epoch > (int64_t(1) << 40)) {
        r.epoch = 0;
        break;
      }
      r.epoch = r.epoch * 10 + (c - '0');
    }
    v.remove_prefix(colon + 1);
  }
  const size_t dash = v.rfind('-');
  r.upstream = dash == std::string_view::npos ? v : v.substr(0, dash);
  r.revision = dash == std::string_view::npos ? std::string_view() : v.substr(dash + 1);
  return r;
}

}  // namespace

std::vector<Alternatives> parse_relations(std::string_view field) {
  std::vector<Alternatives> groups;
  while (!field.empty()) {
    const size_t comma = field.find(',');
    std::string_view group = field.substr(0, comma);
    field = comma == std::string_view::npos ? std::string_view() : field.substr(comma + 1);
    Alternatives alts;
    while (!group.empty()) {
      const size_t bar = group.find('|');
      const std::string_view name = alternative_name(group.substr(0, bar));
      if (!name.empty()) alts.emplace_back(name);
      group = bar == std::string_view::npos ? std::string_view() : group.substr(bar + 1);
    }
    if (!alts.empty()) groups.push_back(std::move(alts));
  }
  return groups;
}

int compare_debian_versions(std::string_view a, std::string_view b) {
  const Version va = split_version(a), vb = split_version(b);
  if (va.epoch != vb.epoch) return va.epoch < vb.epoch ? -1 : 1;
  if (int c = compare_fragments(va.upstream, vb.upstream)) return c;
  return compare_fragments(va.revision, vb.revision);
}

DebianArchive parse_dumpavail(std::istream& in) {
  StanzaReader reader;
  std::string line;
  while (std::getline(in, line)) reader.line(line);
  GANNET_CHECK(!in.bad(), "dumpavail: read error");
  return reader.finish();
}

DebianArchive parse_dumpavail(std::string_view text) {
  StanzaReader reader;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    reader.line(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  }
  return reader.finish();
}

}  // namespace gannet::gnn
