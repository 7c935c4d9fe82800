// Debian's package index as `apt-cache dumpavail` prints it (deb822 stanzas: "Field: value"
// lines, continuation lines starting with a blank, stanzas separated by blank lines), read into
// the few fields the package graph needs.
#pragma once
#include <cstdint>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

namespace gannet::gnn {

// One relation group, "a (>= 1) | b:any": any one of these package names satisfies it. Version
// constraints, architecture qualifiers (":any"), architecture lists ("[amd64]") and build
// profiles ("<!nocheck>") are stripped; only the names remain, in the order written.
using Alternatives = std::vector<std::string>;

struct DebianPackage {
  std::string name, version, architecture;
  std::string section;      // as written, archive-area prefix ("non-free/") included
  std::string description;  // the synopsis: the first line of Description
  std::vector<Alternatives> depends, pre_depends, recommends;
  std::vector<std::string> provides;  // virtual package names, versions stripped
};

struct DebianArchive {
  // One record per package name, in the order the names first appear. Where several stanzas
  // share a name (versions from several suites, or architectures under multiarch) the highest
  // version by dpkg's ordering is kept, the first one read among equal versions.
  std::vector<DebianPackage> packages;
  int64_t stanzas = 0;     // stanzas with a Package field
  int64_t duplicates = 0;  // stanzas dropped for another of the same name
  int64_t nameless = 0;    // stanzas without a Package field, skipped
};

// Field names are matched case-insensitively, as deb822 says. A line that is neither blank, a
// continuation nor "Field: value" (or a continuation before any field) is a gannet::Error naming
// the line number.
DebianArchive parse_dumpavail(std::istream& in);
DebianArchive parse_dumpavail(std::string_view text);

// The groups of a relation field ("a (>= 1), b | c:any"); empty groups and names are skipped.
std::vector<Alternatives> parse_relations(std::string_view field);

// dpkg's version ordering (epoch, upstream version, revision; '~' sorts before everything, even
// the end): negative, zero or positive as a < b, a == b, a > b.
int compare_debian_versions(std::string_view a, std::string_view b);

}  // namespace gannet::gnn
