// Whole-file reads and crash-safe writes: write_file_atomic writes a temporary file beside the
// target, flushes and fsyncs it, then renames it over the target, so a reader sees either the old
// file or the complete new one, never a half-written file.
#pragma once
#include <functional>
#include <ostream>
#include <string>

namespace gannet {

// Writes `path` atomically: `writer` fills a stream backed by `path + ".tmp.<pid>"` (same
// directory), which is then flushed, fsynced and renamed over `path`. On any failure (the writer
// throws, a write or fsync fails, the directory does not exist) the temporary is removed, `path`
// is left as it was, and a gannet::Error naming `path` is thrown.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& writer);
void write_file_atomic(const std::string& path, const std::string& contents);

// The whole file as bytes. Throws gannet::Error ("cannot open X: No such file or directory"), and
// refuses a FIFO, device or directory without reading from it (core/regular_file.h).
std::string read_file(const std::string& path);

}  // namespace gannet
