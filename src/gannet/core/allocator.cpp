#include "gannet/core/allocator.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace gannet {

namespace {
constexpr size_t kAlign = 64;

struct Cache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;  // rounded size -> block
  size_t cached = 0, in_use = 0, peak = 0;
  size_t window_peak = 0;  // since host_reset_window_peak()
  ~Cache() {
    for (auto& kv : free_blocks) std::free(kv.second);
  }
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: tensors may outlive static destructors
  return *c;
}

void note_in_use(Cache& c) {
  if (c.in_use > c.peak) c.peak = c.in_use;
  if (c.in_use > c.window_peak) c.window_peak = c.in_use;
}

// Block sizes: small ones to 64 bytes; from 1 MiB on, to an eighth of their power of two, so
// that activations whose row count changes from step to step (MoE expert buffers, token dropping)
// share a few sizes instead of each needing a new block (at most 12.5% unused).
size_t round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes < (1u << 20)) return (bytes + kAlign - 1) / kAlign * kAlign;
  size_t pow2 = size_t(1) << (63 - __builtin_clzll((unsigned long long)bytes));
  size_t step = pow2 / 8;
  return (bytes + step - 1) / step * step;
}
}  // namespace

void* host_alloc(size_t bytes) {
  size_t n = round_size(bytes);
#ifdef GANNET_NO_ALLOC_CACHE
  {  // sanitizer builds: every block fresh, so use-after-free is caught
    Cache& c0 = cache();
    std::lock_guard<std::mutex> lock(c0.mu);
    c0.in_use += n;
    note_in_use(c0);
  }
  void* q = std::aligned_alloc(kAlign, n);
  if (!q) throw std::bad_alloc();
  return q;
#endif
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(n);
    if (it != c.free_blocks.end()) {
      void* p = it->second;
      c.free_blocks.erase(it);
      c.cached -= n;
      c.in_use += n;
      note_in_use(c);
      return p;
    }
  }
  void* p = std::aligned_alloc(kAlign, n);
  if (!p) {
    host_release_cached();
    p = std::aligned_alloc(kAlign, n);
    if (!p) throw std::bad_alloc();
  }
  std::lock_guard<std::mutex> lock(c.mu);
  c.in_use += n;
  note_in_use(c);
  return p;
}

void host_free(void* p, size_t bytes) {
  if (!p) return;
  size_t n = round_size(bytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.in_use -= n;
#ifdef GANNET_NO_ALLOC_CACHE
  std::free(p);
  return;
#endif
  // The cache never holds more than the peak in use: sizes that keep changing cost allocations,
  // never unbounded memory.
  if (c.cached + n > c.peak) {
    std::free(p);
    return;
  }
  c.free_blocks.emplace(n, p);
  c.cached += n;
}

void host_release_cached() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& kv : c.free_blocks) std::free(kv.second);
  c.free_blocks.clear();
  c.cached = 0;
}

size_t host_bytes_in_use() { return cache().in_use; }
size_t host_bytes_peak() { return cache().peak; }

void host_reset_window_peak() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.window_peak = c.in_use;
}

size_t host_bytes_window_peak() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.window_peak;
}

}  // namespace gannet
