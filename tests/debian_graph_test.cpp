// The Debian package graph from a handwritten `apt-cache dumpavail` text: parsing (continuation
// lines, duplicates, version constraints, qualifiers), dependency resolution (alternatives,
// virtual packages, self references, unknown names), labels, split, summary, and the
// `gannet graph prepare` command on it.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "gannet/core/atomic_file.h"
#include "gannet/gnn/debian_graph.h"
#include "gannet/gnn/debian_packages.h"
#include "gannet/gnn/graph_dataset.h"
#include "test_files.h"

namespace gannet::gnn {
namespace {

using Strings = std::vector<std::string>;
using testing::has;
using testing::message_of;

// Ten packages in twelve named stanzas (libfoo three times: 1:0.9 beats 1.0-1 by its epoch, the
// i386 stanza of the same version comes later and loses) and one stanza without a name.
// Node ids by name: app 0, dpkg 1, elinks 2, exim 3, libbar 4, libfoo 5, lynx 6, postfix 7, vim 8,
// zsh 9. Virtual: mail-transport-agent (exim, postfix), www-browser (elinks, lynx), editor (vim).
constexpr const char* kDumpavail = R"(Package: app
Version: 1.0-1
Architecture: amd64
Depends: libfoo (>= 1.2), libbar:any | libbaz,
 mail-transport-agent, app, unknown-pkg
Pre-Depends: dpkg (>= 1.15)
Recommends: www-browser | editor
Section: utils
Description: Text application for mail and web
 A long description line that is not kept.
 .
 Another one.

Package: dpkg
Version: 1.21
Depends: tar:any [amd64]
Section: admin
Description: Debian package management system

Package: libfoo
Version: 1.0-1
Depends: libbar
Section: libs
Description: Foo library, old version

Package: exim
Provides: mail-transport-agent
Section: mail
Description: Mail transport agent

Version: 3
Section: orphans
Description: A stanza without a Package field

Package: libfoo
Version: 1:0.9
Depends: lynx
Section: non-free/libs
Description: Foo library for text processing

Package: libbar
Section: libs
Description: Bar library for text processing

Package: libfoo
Version: 1:0.9
Architecture: i386
Depends: dpkg
Section: libs
Description: Foo library, same version, another architecture

Package: lynx
Provides: www-browser
Depends: www-browser
Section: web
Description: Text web browser

Package: postfix
Provides: mail-transport-agent (= 3.0)
Section: mail
Description: Mail transport agent, fast

package: vim
Depends: mail-transport-agent | postfix
Recommends: libbar | libfoo
Section: editors
Description: Text editor
Provides: editor

Package: elinks
DEPENDS: libfoo
Provides: www-browser
Section: web
Description: Text web browser with tabs

Package: zsh
Section: shells
Description: Shell with text completion
)";

std::vector<int32_t> neighbours(const CsrGraph& g, int64_t v) {
  return std::vector<int32_t>(g.neighbours_of(v), g.neighbours_of(v) + g.degree(v));
}

TEST(DebianGraphTest, RelationsLoseVersionsQualifiersArchitecturesAndProfiles) {
  const auto groups = parse_relations("libc6 (>= 2.34), python3:any | python3-dev [amd64] <!nocheck>, , foo|bar");
  EXPECT_EQ(groups, (std::vector<Alternatives>{{"libc6"}, {"python3", "python3-dev"}, {"foo", "bar"}}));
  EXPECT_TRUE(parse_relations("").empty());
}

TEST(DebianGraphTest, VersionsFollowDpkgOrdering) {
  EXPECT_LT(compare_debian_versions("1.0", "1.0-1"), 0);
  EXPECT_LT(compare_debian_versions("1.0~rc1", "1.0"), 0);
  EXPECT_GT(compare_debian_versions("1:0.9", "2.0"), 0);
  EXPECT_GT(compare_debian_versions("1.10", "1.9"), 0);
  EXPECT_GT(compare_debian_versions("1.0a", "1.0"), 0);
  EXPECT_GT(compare_debian_versions("1.0+b1", "1.0"), 0);
  EXPECT_GT(compare_debian_versions("1.0.1", "1.0a"), 0);  // symbols sort after letters
  EXPECT_EQ(compare_debian_versions("1.01", "1.1"), 0);
  EXPECT_EQ(compare_debian_versions("0:1.0-1", "1.0-1"), 0);
}

TEST(DebianGraphTest, ParserKeepsOneRecordPerNameWithTheHighestVersion) {
  const DebianArchive a = parse_dumpavail(std::string_view(kDumpavail));
  EXPECT_EQ(a.stanzas, 12);
  EXPECT_EQ(a.duplicates, 2);
  EXPECT_EQ(a.nameless, 1);
  Strings names;
  for (const DebianPackage& p : a.packages) names.push_back(p.name);
  EXPECT_EQ(names, (Strings{"app", "dpkg", "libfoo", "exim", "libbar", "lynx", "postfix", "vim", "elinks", "zsh"}));
  const DebianPackage& app = a.packages[0];
  EXPECT_EQ(app.description, "Text application for mail and web");
  EXPECT_EQ(app.depends, (std::vector<Alternatives>{
                             {"libfoo"}, {"libbar", "libbaz"}, {"mail-transport-agent"}, {"app"}, {"unknown-pkg"}}));
  EXPECT_EQ(app.pre_depends, (std::vector<Alternatives>{{"dpkg"}}));
  EXPECT_EQ(app.recommends, (std::vector<Alternatives>{{"www-browser", "editor"}}));
  const DebianPackage& libfoo = a.packages[2];
  EXPECT_EQ(libfoo.version, "1:0.9");
  EXPECT_EQ(libfoo.architecture, "");
  EXPECT_EQ(libfoo.section, "non-free/libs");
  EXPECT_EQ(libfoo.depends, (std::vector<Alternatives>{{"lynx"}}));
  EXPECT_EQ(a.packages[6].provides, Strings{"mail-transport-agent"});
  EXPECT_EQ(a.packages[8].depends, (std::vector<Alternatives>{{"libfoo"}}));  // "DEPENDS:"
}

TEST(DebianGraphTest, StreamAndStringParsesAgree) {
  std::istringstream in(kDumpavail);
  const DebianArchive s = parse_dumpavail(in), t = parse_dumpavail(std::string_view(kDumpavail));
  ASSERT_EQ(s.packages.size(), t.packages.size());
  for (size_t i = 0; i < s.packages.size(); ++i) EXPECT_EQ(s.packages[i].depends, t.packages[i].depends);
}

TEST(DebianGraphTest, MalformedLinesAreErrorsWithTheirLineNumber) {
  EXPECT_TRUE(has(message_of([] { parse_dumpavail(std::string_view("Package: a\nno colon here\n")); }),
                  "dumpavail line 2: expected 'Field: value', got 'no colon here'"));
  EXPECT_TRUE(has(message_of([] { parse_dumpavail(std::string_view("Package: a\n\n continued\n")); }),
                  "dumpavail line 3: continuation line outside a field"));
  const DebianArchive crlf = parse_dumpavail(std::string_view("Package: a\r\nDepends: b,\r\n c\r\n\r\nPackage: b\r\n"));
  ASSERT_EQ(crlf.packages.size(), 2u);
  EXPECT_EQ(crlf.packages[0].depends, (std::vector<Alternatives>{{"b"}, {"c"}}));
}

TEST(DebianGraphTest, EdgesFollowTheResolutionRules) {
  const DebianGraph g = build_debian_graph(parse_dumpavail(std::string_view(kDumpavail)).packages, {2});
  EXPECT_EQ(g.names, (Strings{"app", "dpkg", "elinks", "exim", "libbar", "libfoo", "lynx", "postfix", "vim", "zsh"}));
  // app: libfoo; libbar (first real of libbar | libbaz); both MTAs; no self loop; dpkg; the two
  // www-browser providers (www-browser comes before editor). libfoo (kept 1:0.9): lynx only.
  // lynx -> www-browser: elinks (itself dropped). elinks: libfoo. vim: postfix (a real package
  // beats the virtual name before it), libbar. zsh: isolated.
  const std::vector<std::vector<int32_t>> expected = {{1, 2, 3, 4, 5, 6, 7}, {0}, {0, 5, 6}, {0}, {0, 8}, {0, 2, 6},
                                                      {0, 2, 5},             {0, 8}, {4, 7}, {}};
  ASSERT_EQ(g.graph.num_nodes, 10);
  for (int v = 0; v < 10; ++v) EXPECT_EQ(neighbours(g.graph, v), expected[v]) << g.names[v];
  EXPECT_EQ(g.graph.num_directed_edges(), 24);
  const DependencyCounts& d = g.dependencies;
  EXPECT_EQ(d.groups, 13);
  EXPECT_EQ(d.real, 8);
  EXPECT_EQ(d.virtual_, 3);
  EXPECT_EQ(d.unresolved, 2);  // unknown-pkg, tar
  EXPECT_EQ(d.self, 2);        // app -> app, lynx -> www-browser -> lynx
}

TEST(DebianGraphTest, LabelsMergeSmallSectionsIntoOther) {
  const DebianGraph g = build_debian_graph(parse_dumpavail(std::string_view(kDumpavail)).packages, {2});
  EXPECT_EQ(g.classes, (Strings{"libs", "mail", "other", "web"}));
  EXPECT_EQ(g.merged_sections, (Strings{"admin", "editors", "shells", "utils"}));
  EXPECT_EQ(std::vector<int32_t>(g.labels.data<int32_t>(), g.labels.data<int32_t>() + 10),
            (std::vector<int32_t>{2, 2, 3, 1, 0, 0, 3, 1, 2, 2}));
  const DebianGraph all = build_debian_graph(parse_dumpavail(std::string_view(kDumpavail)).packages, {1});
  EXPECT_EQ(all.classes, (Strings{"admin", "editors", "libs", "mail", "shells", "utils", "web"}));
  EXPECT_EQ(section_label("non-free-firmware/kernel"), "kernel");
  EXPECT_EQ(section_label("contrib/games"), "games");
  EXPECT_EQ(section_label(""), "unknown");
}

TEST(DebianGraphTest, SplitIsFnv1aOfTheNameModuloTen) {
  // Reference values of FNV-1a 64 (the published test vectors).
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ull);
  // Residues worked out separately: elinks 9 (test), zsh 8 (validation), the others 0-7.
  const DebianGraph g = build_debian_graph(parse_dumpavail(std::string_view(kDumpavail)).packages, {2});
  EXPECT_EQ(std::vector<uint8_t>(g.split.data<uint8_t>(), g.split.data<uint8_t>() + 10),
            (std::vector<uint8_t>{kTrain, kTrain, kTest, kTrain, kTrain, kTrain, kTrain, kTrain, kTrain, kValidation}));
}

TEST(DebianGraphTest, SummaryCountsDegreesClassesAndTheMajorityBaseline) {
  const DebianArchive a = parse_dumpavail(std::string_view(kDumpavail));
  const DebianGraph g = build_debian_graph(a.packages, {2});
  const nlohmann::json s = debian_graph_summary(g, a, {2});
  EXPECT_EQ(s["nodes"], 10);
  EXPECT_EQ(s["undirected_edges"], 12);
  EXPECT_EQ(s["isolated_nodes"], 1);
  // Degrees 7 1 3 1 2 3 3 2 2 0, sorted 0 1 1 2 2 2 3 3 3 7 (nearest rank: median the 5th).
  EXPECT_EQ(s["degree"]["min"], 0);
  EXPECT_EQ(s["degree"]["median"], 2);
  EXPECT_EQ(s["degree"]["p90"], 3);
  EXPECT_EQ(s["degree"]["p99"], 7);
  EXPECT_EQ(s["degree"]["max"], 7);
  EXPECT_DOUBLE_EQ(s["degree"]["mean"].get<double>(), 2.4);
  // Train: app, dpkg, vim other; exim, postfix mail; libbar, libfoo libs; lynx web. Validation
  // zsh (other), test elinks (web).
  EXPECT_EQ(s["majority_baseline"]["class"], "other");
  EXPECT_DOUBLE_EQ(s["majority_baseline"]["validation_accuracy"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(s["majority_baseline"]["test_accuracy"].get<double>(), 0.0);
  EXPECT_EQ(s["classes"][3], (nlohmann::json{{"name", "web"}, {"nodes", 2}, {"train", 1}, {"validation", 0}, {"test", 1}}));
  EXPECT_EQ(s["split"]["train"], 8);
  EXPECT_EQ(s["packages"]["duplicates_dropped"], 2);
  EXPECT_EQ(s["dependencies"]["resolved_virtual"], 3);
}

// `gannet graph prepare` as a user runs it, on the text above.
class DebianGraphCliTest : public testing::TempDirTest {
 protected:
  struct Run {
    int rc;
    std::string out, err;
  };
  Run shell(const std::string& command) {
    const std::string out = file("stdout.txt"), err = file("stderr.txt");
    const int rc = std::system((command + " >" + out + " 2>" + err).c_str());
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_file(out), read_file(err)};
  }
  Run gannet(const std::string& args) { return shell(std::string(GANNET_BINARY) + " " + args); }
};

TEST_F(DebianGraphCliTest, PrepareWritesALoadableSetAndRerunsIdentically) {
  testing::write(file("dumpavail.txt"), kDumpavail);
  const std::string args = "graph prepare --source debian --dumpavail " + file("dumpavail.txt") + " --out " +
                           file("set") + " --dim 3 --min-class 2 --seed 4";
  const Run r = gannet(args);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(has(r.out, "10 nodes, 12 undirected edges, 1 isolated nodes")) << r.out;
  EXPECT_TRUE(has(r.out, "majority baseline 'other'")) << r.out;
  const GraphDataset d = load_graph_dataset(file("set"));
  EXPECT_EQ(d.source, "debian");
  EXPECT_EQ(d.num_nodes(), 10);
  EXPECT_EQ(d.feature_dim(), 3);
  EXPECT_EQ(d.classes, (Strings{"libs", "mail", "other", "web"}));
  EXPECT_EQ(d.nodes_in(kTest), (std::vector<int32_t>{2}));
  EXPECT_EQ(read_file(file("set/names.txt")), "app\ndpkg\nelinks\nexim\nlibbar\nlibfoo\nlynx\npostfix\nvim\nzsh\n");
  const nlohmann::json summary = nlohmann::json::parse(read_file(file("set/summary.json")));
  EXPECT_EQ(summary["features"]["dim"], 3);
  const std::string features = read_file(file("set/features.safetensors"));
  ASSERT_EQ(gannet(args).rc, 0);
  EXPECT_EQ(read_file(file("set/features.safetensors")), features);
  EXPECT_EQ(nlohmann::json::parse(read_file(file("set/summary.json"))), summary);
}

TEST_F(DebianGraphCliTest, UnsupportedSourceAndBadInputAreOneLineErrors) {
  const Run other = gannet("graph prepare --source generated --out " + file("set"));
  EXPECT_EQ(other.rc, 1);
  EXPECT_TRUE(has(other.err, "'generated' is not a supported source (supported: debian)")) << other.err;
  testing::write(file("bad.txt"), "Package: a\nthis is not a field\n");
  const Run bad = gannet("graph prepare --source debian --dumpavail " + file("bad.txt") + " --out " + file("set"));
  EXPECT_EQ(bad.rc, 1);
  EXPECT_TRUE(has(bad.err, "dumpavail line 2")) << bad.err;
  testing::write(file("empty.txt"), "\n\n");
  const Run empty = gannet("graph prepare --source debian --dumpavail " + file("empty.txt") + " --out " + file("set"));
  EXPECT_EQ(empty.rc, 1);
  EXPECT_TRUE(has(empty.err, "no package stanzas")) << empty.err;
  EXPECT_FALSE(std::filesystem::exists(file("set")));
}

TEST_F(DebianGraphCliTest, MissingOrSilentAptCacheSaysWhatToDo) {
  // PATH holds only this directory: first without apt-cache, then with one that prints nothing.
  std::filesystem::create_directories(file("bin"));
  const std::string prepare = "graph prepare --source debian --out " + file("set");
  const Run missing = shell("PATH=" + file("bin") + " " + GANNET_BINARY + " " + prepare);
  EXPECT_EQ(missing.rc, 1);
  EXPECT_TRUE(has(missing.err, "apt-cache not found")) << missing.err;
  EXPECT_TRUE(has(missing.err, "--dumpavail FILE")) << missing.err;
  testing::write(file("bin/apt-cache"), "#!/bin/sh\nexit 0\n");
  std::filesystem::permissions(file("bin/apt-cache"), std::filesystem::perms::owner_all);
  const Run silent = shell("PATH=" + file("bin") + " " + GANNET_BINARY + " " + prepare);
  EXPECT_EQ(silent.rc, 1);
  EXPECT_TRUE(has(silent.err, "apt-cache dumpavail printed nothing")) << silent.err;
  EXPECT_TRUE(has(silent.err, "run `apt-get update` first")) << silent.err;
}

}  // namespace
}  // namespace gannet::gnn
