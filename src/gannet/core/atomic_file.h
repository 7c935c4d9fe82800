// Whole-file reads and crash-safe writes: write_file_atomic writes a temporary file beside the
// target, flushes and fsyncs it, then renames it over the target, so a reader sees either the old
// file or the complete new one, never a half-written file.
#pragma once
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace gannet {

// Writes `path` atomically: `writer` fills a stream backed by `path + ".tmp.<pid>"` (same
// directory), which is then flushed, fsynced and renamed over `path`. On any failure (the writer
// throws, a write or fsync fails, the directory does not exist) the temporary is removed, `path`
// is left as it was, and a gannet::Error naming `path` is thrown. Before writing, it removes the
// temporaries of `path` that killed processes left (remove_stale_temporaries).
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& writer);
void write_file_atomic(const std::string& path, const std::string& contents);

// Writes all n bytes to the descriptor (retrying short writes and EINTR); returns 0 or the errno
// of the failure.
int write_all(int fd, const char* p, size_t n);

// The temporary write_file_atomic fills for `path` in this process: `path + ".tmp.<pid>"`.
std::string temporary_path(const std::string& path);

// Removes the temporaries in `dir` ("<name>.tmp.<pid>", regular files) whose process no longer
// exists: what a writer killed before its rename left behind. With `target_name`, only that file's
// ("<target_name>.tmp.<pid>"). A temporary of a live process is kept (it may be writing it). The
// process check is local: temporaries on a filesystem shared by several machines are only safe to
// clean while no process of another machine writes that directory. Returns the names removed;
// never throws (what it cannot list or remove stays).
std::vector<std::string> remove_stale_temporaries(const std::string& dir, const std::string& target_name = "");

// The process id that ends `name` after the last `marker` (".tmp." in "a.json.tmp.123": 123), or
// -1 if the rest is not a plain decimal number.
long pid_after(const std::string& name, const std::string& marker);

// Whether a process with this id exists on this machine (false for ids <= 0).
bool process_exists(long pid);

// The whole file as bytes. Throws gannet::Error ("cannot open X: No such file or directory"), and
// refuses a FIFO, device or directory without reading from it (core/regular_file.h).
std::string read_file(const std::string& path);

}  // namespace gannet
