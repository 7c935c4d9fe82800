// Opening a file that is to be read whole (a model, a token file, a config): anything but a
// regular file is refused before a byte is read. A FIFO opened for reading would block until a
// writer appears, and a device or directory has no size to check a header against.
#pragma once
#include <sys/stat.h>

#include <string>

namespace gannet {

// Opens `path` read-only (O_CLOEXEC) and returns the descriptor, its stat in `st`. The open is
// non-blocking, so a FIFO is refused at once: a non-regular file throws gannet::Error
// "cannot open X: a FIFO, not a regular file" (directory, character device, ...). The caller closes.
int open_regular_file(const std::string& path, struct stat& st);

}  // namespace gannet
