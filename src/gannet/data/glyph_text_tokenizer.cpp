#include "gannet/data/glyph_text_tokenizer.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"

namespace gannet::data {

namespace {
const char* const kFormatLine = "gannet-glyph-text-vocab-1";
const std::vector<std::string> kSpecials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
}  // namespace

GlyphTextTokenizer::GlyphTextTokenizer(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i) ids_.emplace(tokens_[i], (int32_t)i);
}

std::vector<std::string> GlyphTextTokenizer::split(const std::string& text) {
  std::vector<std::string> out;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) out.push_back(std::move(word));
    word.clear();
  };
  for (char c : text) {
    if (c == ' ') {
      flush();
    } else if (c == '-') {
      flush();
      out.push_back("-");
    } else {
      word.push_back(c);
    }
  }
  flush();
  return out;
}

GlyphTextTokenizer GlyphTextTokenizer::build(const std::vector<std::string>& texts, int64_t min_count) {
  std::map<std::string, int64_t> counts;
  for (const std::string& t : texts)
    for (std::string& w : split(t)) ++counts[std::move(w)];
  std::vector<std::pair<std::string, int64_t>> kept;
  for (auto& [w, n] : counts)
    if (n >= min_count && std::find(kSpecials.begin(), kSpecials.end(), w) == kSpecials.end()) kept.push_back({w, n});
  std::stable_sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::string> tokens = kSpecials;
  for (auto& [w, n] : kept) tokens.push_back(w);
  return GlyphTextTokenizer(std::move(tokens));
}

GlyphTextTokenizer GlyphTextTokenizer::load(const std::string& path) {
  std::istringstream in(read_file(path));
  std::string line;
  GANNET_CHECK(std::getline(in, line) && line == kFormatLine, path, ":1: not a glyph text vocabulary (expected '",
               kFormatLine, "')");
  std::vector<std::string> tokens;
  std::unordered_map<std::string, int64_t> seen;
  for (int64_t lineno = 2; std::getline(in, line); ++lineno) {
    GANNET_CHECK(!line.empty() && line.find(' ') == std::string::npos, path, ":", lineno,
                 ": a token must be non-empty and without spaces");
    const size_t i = tokens.size();
    GANNET_CHECK(i >= kSpecials.size() || line == kSpecials[i], path, ":", lineno, ": expected the special token ",
                 kSpecials[std::min(i, kSpecials.size() - 1)], ", got '", line, "'");
    auto [it, fresh] = seen.emplace(line, lineno);
    GANNET_CHECK(fresh, path, ":", lineno, ": token '", line, "' repeats line ", it->second);
    tokens.push_back(line);
  }
  GANNET_CHECK(tokens.size() >= kSpecials.size(), path, ": the vocabulary lacks the special tokens");
  return GlyphTextTokenizer(std::move(tokens));
}

void GlyphTextTokenizer::save(const std::string& path) const {
  std::string text = std::string(kFormatLine) + "\n";
  for (const std::string& t : tokens_) text += t + "\n";
  write_file_atomic(path, text);
}

const std::string& GlyphTextTokenizer::token(int32_t id) const {
  GANNET_CHECK(id >= 0 && id < vocab_size(), "glyph text tokenizer: id ", id, " is outside [0, ", vocab_size(), ")");
  return tokens_[(size_t)id];
}

int32_t GlyphTextTokenizer::id(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? kUnk : it->second;
}

std::vector<int32_t> GlyphTextTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> out;
  for (const std::string& w : split(text)) out.push_back(id(w));
  return out;
}

std::string GlyphTextTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  bool glue = true;  // no space before the next token: at the start, and after a hyphen
  for (int32_t i : ids) {
    const std::string& t = token(i);
    if (i == kPad || i == kCls || i == kSep) continue;
    const bool hyphen = t == "-";
    if (!glue && !hyphen) out += ' ';
    out += t;
    glue = hyphen;
  }
  return out;
}

void GlyphTextTokenizer::encode_batch(const std::vector<std::string>& texts, int64_t length, Tensor& tokens,
                                      Tensor& mask) const {
  GANNET_CHECK(length >= 2, "glyph text tokenizer: a length of ", length, " leaves no room for [CLS] and [SEP]");
  const int64_t B = (int64_t)texts.size();
  tokens = Tensor::zeros({B, length}, DType::i32);  // kPad is 0
  mask = Tensor::zeros({B, length}, DType::u8);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int32_t> ids = encode(texts[(size_t)b]);
    ids.resize(std::min<size_t>(ids.size(), (size_t)length - 2));
    ids.insert(ids.begin(), kCls);
    ids.push_back(kSep);
    std::copy(ids.begin(), ids.end(), tokens.data<int32_t>() + b * length);
    std::fill_n(mask.data<uint8_t>() + b * length, ids.size(), uint8_t{1});
  }
}

}  // namespace gannet::data
