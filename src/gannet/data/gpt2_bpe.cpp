#include "gannet/data/gpt2_bpe.h"

#include <algorithm>
#include <mutex>
#include <string_view>

#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"
#include "gannet/data/unicode_class.h"
#include "gannet/io/json_config.h"

namespace gannet::data {

namespace {

constexpr std::string_view kEndOfText = "<|endoftext|>";
constexpr char32_t kInvalidUtf8 = 0xFFFFFFFF;  // a byte that starts no valid UTF-8 sequence

// GPT-2's bytes_to_unicode: the printable bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for
// themselves; the other 68 get U+0100, U+0101, ... in byte order, so that every token is printable.
std::array<char32_t, 256> byte_code_points() {
  std::array<char32_t, 256> cps{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    cps[b] = printable ? (char32_t)b : next++;
  }
  return cps;
}

void append_utf8(std::string& s, char32_t c) {
  if (c < 0x80) {
    s += (char)c;
  } else if (c < 0x800) {
    s += (char)(0xC0 | (c >> 6));
    s += (char)(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    s += (char)(0xE0 | (c >> 12));
    s += (char)(0x80 | ((c >> 6) & 0x3F));
    s += (char)(0x80 | (c & 0x3F));
  } else {
    s += (char)(0xF0 | (c >> 18));
    s += (char)(0x80 | ((c >> 12) & 0x3F));
    s += (char)(0x80 | ((c >> 6) & 0x3F));
    s += (char)(0x80 | (c & 0x3F));
  }
}

// The code point starting at s[0] (n bytes available) and its length in bytes; a byte that does
// not start a valid, shortest-form sequence is one "character" of its own (kInvalidUtf8).
size_t next_code_point(const unsigned char* s, size_t n, char32_t& cp) {
  const unsigned c = s[0];
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  size_t len;
  char32_t v, min;
  if ((c & 0xE0) == 0xC0) {
    len = 2, v = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, v = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, v = c & 0x07, min = 0x10000;
  } else {
    cp = kInvalidUtf8;
    return 1;
  }
  if (len > n) {
    cp = kInvalidUtf8;
    return 1;
  }
  for (size_t i = 1; i < len; ++i) {
    if ((s[i] & 0xC0) != 0x80) {
      cp = kInvalidUtf8;
      return 1;
    }
    v = (v << 6) | (s[i] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
    cp = kInvalidUtf8;
    return 1;
  }
  cp = v;
  return len;
}

// Length of the contraction ('s 't 're 've 'm 'll 'd) at text[i] == '\'', or 0.
size_t contraction_length(std::string_view text, size_t i) {
  if (i + 1 >= text.size()) return 0;
  const char a = text[i + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= text.size()) return 0;
  const char b = text[i + 2];
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// GPT-2's pre-tokenizer: calls emit(begin, end) with the byte range of each word, in order. The
// alternatives of the pattern are tried in its order at each position, as a regex engine does:
//   contraction; optional ' ' + letters; + numbers; + others (not space, letter or number);
//   a run of white space, less its last character when a non-space follows (\s+(?!\S)), or the
//   single white-space character before a non-space (\s+).
template <class Emit>
void split_into_words(std::string_view text, Emit&& emit) {
  std::vector<CharClass> cls;  // per code point
  std::vector<size_t> off;     // its byte offset; off[n] = text.size()
  cls.reserve(text.size());
  off.reserve(text.size() + 1);
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size();) {
    char32_t cp;
    size_t len = next_code_point(bytes + i, text.size() - i, cp);
    cls.push_back(char_class(cp));
    off.push_back(i);
    i += len;
  }
  off.push_back(text.size());

  const size_t n = cls.size();
  for (size_t k = 0; k < n;) {
    const char c = text[off[k]];
    size_t end;
    if (size_t len = c == '\'' ? contraction_length(text, off[k]) : 0; len != 0) {
      end = k + len;  // ASCII: one code point per byte
    } else {
      const size_t s = (c == ' ' && k + 1 < n && cls[k + 1] != CharClass::space) ? k + 1 : k;
      const CharClass sc = cls[s];
      if (sc != CharClass::space) {
        end = s + 1;
        while (end < n && cls[end] == sc) ++end;
      } else {
        size_t j = k + 1;
        while (j < n && cls[j] == CharClass::space) ++j;
        end = (j == n || j - k == 1) ? j : j - 1;
      }
    }
    emit(off[k], off[end]);
    k = end;
  }
}

uint64_t pair_key(int32_t left, int32_t right) { return (uint64_t)(uint32_t)left << 32 | (uint32_t)right; }

}  // namespace

// Words seen before and their tokens. Bounded: emptied when full (text has a long tail of rare
// words; the common ones come back at once).
struct Gpt2Bpe::WordCache {
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  static constexpr size_t kMaxWords = 1 << 17;
  static constexpr size_t kMaxWordBytes = 64;  // longer words are rare; not worth the memory
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<int32_t>, Hash, std::equal_to<>> words;
};

Gpt2Bpe::Gpt2Bpe() : cache_(std::make_unique<WordCache>()) {}
Gpt2Bpe::Gpt2Bpe(Gpt2Bpe&&) noexcept = default;
Gpt2Bpe& Gpt2Bpe::operator=(Gpt2Bpe&&) noexcept = default;
Gpt2Bpe::~Gpt2Bpe() = default;

Gpt2Bpe Gpt2Bpe::load(const std::string& vocab_json_path, const std::string& merges_txt_path) {
  Gpt2Bpe t;
  const std::array<char32_t, 256> byte_cps = byte_code_points();

  // vocab.json: {"token": id, ...} with ids 0..N-1, each once.
  nlohmann::json vocab = io::parse_json_file(vocab_json_path);
  GANNET_CHECK(vocab.is_object() && !vocab.empty(), vocab_json_path,
               ": expected a non-empty JSON object mapping tokens to ids");
  const int64_t size = (int64_t)vocab.size();
  t.tokens_.assign(size, std::string());
  std::vector<bool> seen(size, false);
  t.ids_.reserve(size);
  for (const auto& [token, value] : vocab.items()) {
    GANNET_CHECK(value.is_number_integer(), vocab_json_path, ": the id of token '", token, "' is not an integer");
    const int64_t id = value.get<int64_t>();
    GANNET_CHECK(id >= 0 && id < size, vocab_json_path, ": id ", id, " of token '", token,
                 "' is outside 0..", size - 1, " (the ids must be 0..N-1, each once)");
    GANNET_CHECK(!seen[id], vocab_json_path, ": tokens '", t.tokens_[id], "' and '", token, "' both have id ", id);
    seen[id] = true;
    t.tokens_[id] = token;
    t.ids_.emplace(token, (int32_t)id);
  }

  // The bytes each token stands for. An entry with characters outside the byte alphabet (an
  // added token such as "<|endoftext|>" is inside it, but others may not be) decodes as its text.
  std::unordered_map<char32_t, unsigned char> cp_bytes;
  for (int b = 0; b < 256; ++b) cp_bytes[byte_cps[b]] = (unsigned char)b;
  t.token_bytes_.resize(size);
  for (int64_t id = 0; id < size; ++id) {
    const std::string& token = t.tokens_[id];
    std::string bytes;
    bool in_alphabet = true;
    for (size_t i = 0; i < token.size() && in_alphabet;) {
      char32_t cp;
      i += next_code_point(reinterpret_cast<const unsigned char*>(token.data()) + i, token.size() - i, cp);
      auto it = cp_bytes.find(cp);
      in_alphabet = it != cp_bytes.end();
      if (in_alphabet) bytes += (char)it->second;
    }
    t.token_bytes_[id] = in_alphabet ? bytes : token;
  }
  for (int b = 0; b < 256; ++b) {
    std::string symbol;
    append_utf8(symbol, byte_cps[b]);
    auto it = t.ids_.find(symbol);
    GANNET_CHECK(it != t.ids_.end(), vocab_json_path, ": the byte token '", symbol, "' (byte ", b,
                 ") is missing; a GPT-2 vocabulary holds all 256");
    t.byte_ids_[b] = it->second;
  }
  auto eos = t.ids_.find(std::string(kEndOfText));
  t.eos_id_ = eos == t.ids_.end() ? -1 : eos->second;

  // merges.txt: an optional "#version" line, then "left right" per line; rank = order.
  const std::string merges = read_file(merges_txt_path);
  int32_t rank = 0;
  size_t line_no = 0;
  for (size_t pos = 0; pos < merges.size();) {
    size_t eol = merges.find('\n', pos);
    if (eol == std::string::npos) eol = merges.size();
    std::string_view line(merges.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    const size_t space = line.find(' ');
    GANNET_CHECK(space != std::string_view::npos && space > 0 && space + 1 < line.size() &&
                     line.find(' ', space + 1) == std::string_view::npos,
                 merges_txt_path, " line ", line_no, ": expected two tokens separated by one space, got '", line, "'");
    const std::string left(line.substr(0, space)), right(line.substr(space + 1));
    auto id_of = [&](const std::string& token) {
      auto it = t.ids_.find(token);
      GANNET_CHECK(it != t.ids_.end(), merges_txt_path, " line ", line_no, ": token '", token, "' is not in ",
                   vocab_json_path);
      return it->second;
    };
    const int32_t l = id_of(left), r = id_of(right), merged = id_of(left + right);
    t.merges_.emplace(pair_key(l, r), Merge{rank++, merged});  // a repeated merge keeps its first rank
  }
  return t;
}

const std::string& Gpt2Bpe::token(int32_t id) const {
  GANNET_CHECK(id >= 0 && id < vocab_size(), "gpt2 tokenizer: id ", id, " is outside the vocabulary [0, ",
               vocab_size(), ")");
  return tokens_[id];
}

int32_t Gpt2Bpe::token_id(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

std::vector<std::string> Gpt2Bpe::split_words(const std::string& text) {
  std::vector<std::string> words;
  split_into_words(text, [&](size_t b, size_t e) { words.emplace_back(text, b, e - b); });
  return words;
}

std::vector<int32_t> Gpt2Bpe::encode(const std::string& text, AllowSpecial allow) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 1);
  if (allow == AllowSpecial::none || eos_id_ < 0) {
    encode_ordinary(text, out);
    return out;
  }
  split_at_special_tokens(
      text, {{std::string(kEndOfText), eos_id_}}, [&](std::string_view piece) { encode_ordinary(piece, out); },
      [&](int32_t id) { out.push_back(id); });
  return out;
}

void Gpt2Bpe::encode_ordinary(std::string_view text, std::vector<int32_t>& out) const {
  split_into_words(text, [&](size_t b, size_t e) { encode_word(text.data() + b, e - b, out); });
}

void Gpt2Bpe::encode_word(const char* p, size_t n, std::vector<int32_t>& out) const {
  if (n == 1) {
    out.push_back(byte_ids_[(unsigned char)p[0]]);
    return;
  }
  if (n > WordCache::kMaxWordBytes) {
    bpe(p, n, out);
    return;
  }
  const std::string_view word(p, n);
  {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    auto it = cache_->words.find(word);
    if (it != cache_->words.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  bpe(p, n, out);
  std::vector<int32_t> ids(out.begin() + (std::ptrdiff_t)first, out.end());
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->words.size() >= WordCache::kMaxWords) cache_->words.clear();
  cache_->words.emplace(std::string(word), std::move(ids));
}

// Merges the word's byte tokens, lowest rank first and leftmost first among equal ranks, with a
// heap of candidate pairs over a linked list of symbols: O(n log n) for a word of n bytes.
// This equals GPT-2's reference loop (merge every occurrence of the lowest-ranked pair, repeat)
// whenever each merge ranks after the merges that make its two parts, as in any trained file.
void Gpt2Bpe::bpe(const char* p, size_t n, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id, prev, next;  // id -1: merged into its left neighbour
  };
  struct Candidate {
    int32_t rank, pos, left, right, merged;
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<Symbol> symbols(n);
  for (size_t i = 0; i < n; ++i)
    symbols[i] = {byte_ids_[(unsigned char)p[i]], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1};
  std::vector<Candidate> heap;
  auto consider = [&](int32_t i) {
    const int32_t j = symbols[i].next;
    if (j < 0) return;
    auto it = merges_.find(pair_key(symbols[i].id, symbols[j].id));
    if (it == merges_.end()) return;
    heap.push_back({it->second.rank, i, symbols[i].id, symbols[j].id, it->second.merged});
    std::push_heap(heap.begin(), heap.end());
  };
  for (size_t i = 0; i + 1 < n; ++i) consider((int32_t)i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& a = symbols[c.pos];
    if (a.id != c.left || a.next < 0 || symbols[a.next].id != c.right) continue;  // stale
    Symbol& b = symbols[a.next];
    a.id = c.merged;
    a.next = b.next;
    if (b.next >= 0) symbols[b.next].prev = c.pos;
    b.id = -1;
    if (a.prev >= 0) consider(a.prev);
    consider(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

std::string Gpt2Bpe::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  for (int32_t id : ids) {
    GANNET_CHECK(id >= 0 && id < vocab_size(), "gpt2 tokenizer: cannot decode id ", id,
                 ": outside the vocabulary [0, ", vocab_size(), ")");
    text += token_bytes_[id];
  }
  return text;
}

}  // namespace gannet::data
