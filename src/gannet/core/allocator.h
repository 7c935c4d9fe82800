// 64-byte aligned host memory with a cache of freed blocks, so that a training step that
// allocates the same activation sizes each time stops calling malloc after the first step. Large
// sizes are rounded to a geometric grid (an eighth of their power of two), and the cache holds at
// most the peak bytes in use, so varying sizes cannot make it grow without bound.
#pragma once
#include <cstddef>

namespace gannet {

void* host_alloc(size_t bytes);
void host_free(void* p, size_t bytes);
// Returns cached blocks to the system.
void host_release_cached();
// Bytes currently handed out (not counting the cache), and the peak since start.
size_t host_bytes_in_use();
size_t host_bytes_peak();
// The peak bytes in use since the last reset (for measuring one phase, e.g. a training step).
void host_reset_window_peak();
size_t host_bytes_window_peak();

}  // namespace gannet
