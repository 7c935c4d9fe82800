// Binary token files, read through a read-only memory map.
//
// Layout (little-endian): a 32-byte header
//   char     magic[8]          "GNTOK001"
//   uint32   version           1
//   uint32   bytes_per_token   2 (vocab <= 65536) or 4
//   uint64   token_count
//   uint32   vocab_size
//   uint32   reserved          0
// followed by token_count unsigned tokens of bytes_per_token bytes each.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gannet::data {

inline constexpr size_t kTokenFileHeaderBytes = 32;
// The largest vocabulary a token file may declare (real ones are below 2^18): what is sized by the
// vocabulary (data analyze's unigram table, a model's embedding) stays bounded whatever a header says.
inline constexpr uint32_t kMaxTokenFileVocab = 1u << 24;

// Writes `tokens` to `path` atomically (temporary file, fsync, rename). Every token must lie in
// [0, vocab_size); throws gannet::Error naming the file otherwise.
void write_token_file(const std::string& path, const std::vector<int32_t>& tokens, int vocab_size);

class TokenFile {
 public:
  // Maps `path` and validates it: magic, version, token width, size against the token count, and
  // every token < vocab size. Any problem is a one-line gannet::Error naming the file.
  static TokenFile open(const std::string& path);

  int64_t size() const { return count_; }
  int vocab_size() const { return vocab_; }
  int bytes_per_token() const { return bpt_; }
  const std::string& path() const { return path_; }

  // Token i (bounds-checked).
  int32_t at(int64_t i) const;
  // Copies tokens [begin, begin + count) to out (bounds-checked).
  void read(int64_t begin, int64_t count, int32_t* out) const;
  std::vector<int32_t> read(int64_t begin, int64_t count) const;

 private:
  TokenFile() = default;
  std::shared_ptr<const void> map_;  // keeps the mapping alive; copies share it
  const unsigned char* tokens_ = nullptr;
  int64_t count_ = 0;
  int vocab_ = 0;
  int bpt_ = 0;
  std::string path_;
};

}  // namespace gannet::data
