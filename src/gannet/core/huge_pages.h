// Memory for large buffers that are streamed from DRAM (inference weights, the KV cache, the
// bandwidth probe): whole 2 MiB pages, 2 MiB aligned, with transparent huge pages advised, so
// that a sequential pass does not miss the TLB every 4 KiB. Pages are touched only when written.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

namespace gannet {

// At least `bytes` (rounded up to whole huge pages); throws gannet::Error naming `what` when the
// memory cannot be had.
std::shared_ptr<void> allocate_huge_pages(size_t bytes, const std::string& what);
// The size allocate_huge_pages really reserves for `bytes`.
size_t huge_page_round(size_t bytes);

}  // namespace gannet
