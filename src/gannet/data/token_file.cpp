#include "gannet/data/token_file.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>

#include "gannet/core/error.h"
#include "gannet/core/mapped_file.h"
#include "gannet/core/atomic_file.h"
#include "gannet/core/checked_math.h"
#include "gannet/core/limits.h"

namespace gannet::data {

static_assert(std::endian::native == std::endian::little, "token files are little-endian; add byte swapping");

namespace {

constexpr char kMagic[8] = {'G', 'N', 'T', 'O', 'K', '0', '0', '1'};
constexpr uint32_t kVersion = 1;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t bytes_per_token;
  uint64_t token_count;
  uint32_t vocab_size;
  uint32_t reserved;
};
static_assert(sizeof(Header) == kTokenFileHeaderBytes);

// The largest token of n (0 when n == 0).
template <class T>
uint32_t largest_token(const unsigned char* p, int64_t n) {
  const T* t = reinterpret_cast<const T*>(p);
  T mx = 0;
  for (int64_t i = 0; i < n; ++i) mx = t[i] > mx ? t[i] : mx;  // vectorizes
  return mx;
}

// The index of the first token >= vocab.
template <class T>
int64_t first_out_of_range(const unsigned char* p, int64_t n, uint32_t vocab) {
  const T* t = reinterpret_cast<const T*>(p);
  for (int64_t i = 0; i < n; ++i)
    if ((uint64_t)t[i] >= vocab) return i;
  return -1;
}

}  // namespace

void write_token_file(const std::string& path, const std::vector<int32_t>& tokens, int vocab_size) {
  GANNET_CHECK(vocab_size >= 1 && vocab_size <= kMaxVocabSize, "write_token_file ", path, ": vocab size ", vocab_size,
               " is outside [1, ", kMaxVocabSize, "]");
  for (size_t i = 0; i < tokens.size(); ++i)
    GANNET_CHECK(tokens[i] >= 0 && tokens[i] < vocab_size, "write_token_file ", path, ": token ", tokens[i],
                 " at index ", i, " is outside the vocabulary [0, ", vocab_size, ")");
  Header h{};
  std::memcpy(h.magic, kMagic, 8);
  h.version = kVersion;
  h.bytes_per_token = vocab_size <= 65536 ? 2 : 4;
  h.token_count = tokens.size();
  h.vocab_size = (uint32_t)vocab_size;
  h.reserved = 0;
  write_file_atomic(path, [&](std::ostream& os) {
    os.write(reinterpret_cast<const char*>(&h), sizeof h);
    if (h.bytes_per_token == 4) {
      os.write(reinterpret_cast<const char*>(tokens.data()), (std::streamsize)(tokens.size() * 4));
      return;
    }
    std::vector<uint16_t> buf;
    constexpr size_t kChunk = 1 << 16;
    for (size_t i = 0; i < tokens.size(); i += kChunk) {
      size_t n = std::min(kChunk, tokens.size() - i);
      buf.resize(n);
      for (size_t j = 0; j < n; ++j) buf[j] = (uint16_t)tokens[i + j];
      os.write(reinterpret_cast<const char*>(buf.data()), (std::streamsize)(n * 2));
    }
  });
}

TokenFile TokenFile::open(const std::string& path) {
  std::shared_ptr<MappedFile> m = MappedFile::open(path);
  GANNET_CHECK(m->size() >= kTokenFileHeaderBytes, "token file ", path, " is truncated: ", m->size(),
               " bytes, shorter than its ", kTokenFileHeaderBytes, "-byte header");
  Header h;
  std::memcpy(&h, m->data(), sizeof h);
  GANNET_CHECK(std::memcmp(h.magic, kMagic, 8) == 0, "token file ", path, ": bad magic (not a gannet token file)");
  GANNET_CHECK(h.version == kVersion, "token file ", path, ": unsupported version ", h.version, " (expected ",
               kVersion, ")");
  GANNET_CHECK(h.bytes_per_token == 2 || h.bytes_per_token == 4, "token file ", path, ": bad token width ",
               h.bytes_per_token, " bytes (expected 2 or 4)");
  GANNET_CHECK(h.vocab_size >= 1 && h.vocab_size <= (uint64_t)kMaxVocabSize, "token file ", path, ": vocab size ",
               h.vocab_size, " is outside [1, ", kMaxVocabSize, "]");
  GANNET_CHECK(h.bytes_per_token == 4 || h.vocab_size <= 65536, "token file ", path, ": vocab size ", h.vocab_size,
               " does not fit its 2-byte tokens");
  const uint64_t payload = m->size() - kTokenFileHeaderBytes;
  const auto bytes = mul_no_overflow<uint64_t>(h.token_count, h.bytes_per_token);
  GANNET_CHECK(bytes && *bytes <= payload, "token file ", path, " is truncated: header says ", h.token_count,
               " tokens of ", h.bytes_per_token, " bytes but the file has ", payload, " bytes after its header");
  GANNET_CHECK(*bytes == payload, "token file ", path, ": size mismatch: header says ", h.token_count, " tokens (",
               kTokenFileHeaderBytes + *bytes, " bytes) but the file has ", m->size(), " bytes");
  const unsigned char* toks = m->data() + kTokenFileHeaderBytes;
  const int64_t n = (int64_t)h.token_count;
  const uint32_t mx = h.bytes_per_token == 2 ? largest_token<uint16_t>(toks, n) : largest_token<uint32_t>(toks, n);
  if (mx >= h.vocab_size) {
    int64_t bad = h.bytes_per_token == 2 ? first_out_of_range<uint16_t>(toks, n, h.vocab_size)
                                         : first_out_of_range<uint32_t>(toks, n, h.vocab_size);
    uint64_t v = h.bytes_per_token == 2 ? reinterpret_cast<const uint16_t*>(toks)[bad]
                                        : reinterpret_cast<const uint32_t*>(toks)[bad];
    fail(str("token file ", path, ": token ", v, " at index ", bad, " is >= vocab size ", h.vocab_size));
  }
  TokenFile f;
  f.tokens_ = toks;
  f.count_ = n;
  f.vocab_ = (int)h.vocab_size;
  f.max_token_ = n > 0 ? (int32_t)mx : -1;
  f.bpt_ = (int)h.bytes_per_token;
  f.path_ = path;
  f.map_ = m;
  return f;
}

int32_t TokenFile::at(int64_t i) const {
  GANNET_CHECK(i >= 0 && i < count_, "token file ", path_, ": index ", i, " out of range [0, ", count_, ")");
  return bpt_ == 2 ? (int32_t)reinterpret_cast<const uint16_t*>(tokens_)[i]
                   : (int32_t)reinterpret_cast<const uint32_t*>(tokens_)[i];
}

void TokenFile::read(int64_t begin, int64_t count, int32_t* out) const {
  GANNET_CHECK(begin >= 0 && count >= 0 && begin <= count_ && count <= count_ - begin, "token file ", path_,
               ": read of [", begin, ", ", begin + count, ") out of range [0, ", count_, ")");
  if (count == 0) return;  // out may be null (an empty vector's data), and memcpy's pointers must not be
  if (bpt_ == 2) {
    const uint16_t* t = reinterpret_cast<const uint16_t*>(tokens_) + begin;
    for (int64_t i = 0; i < count; ++i) out[i] = t[i];
  } else {
    std::memcpy(out, reinterpret_cast<const uint32_t*>(tokens_) + begin, (size_t)count * 4);
  }
}

std::vector<int32_t> TokenFile::read(int64_t begin, int64_t count) const {
  GANNET_CHECK(count >= 0, "token file ", path_, ": negative read count ", count);
  std::vector<int32_t> v((size_t)count);
  read(begin, count, v.data());
  return v;
}

}  // namespace gannet::data
