#include "gannet/core/huge_pages.h"

#include <sys/mman.h>

#include <cstdlib>

#include "gannet/core/error.h"

namespace gannet {

namespace {
constexpr size_t kHugePage = size_t(2) << 20;
}

size_t huge_page_round(size_t bytes) { return bytes == 0 ? kHugePage : (bytes + kHugePage - 1) / kHugePage * kHugePage; }

std::shared_ptr<void> allocate_huge_pages(size_t bytes, const std::string& what) {
  const size_t size = huge_page_round(bytes);
  void* p = std::aligned_alloc(kHugePage, size);
  GANNET_CHECK(p != nullptr, "cannot allocate ", size >> 20, " MiB for ", what);
  madvise(p, size, MADV_HUGEPAGE);
  return std::shared_ptr<void>(p, &std::free);
}

}  // namespace gannet
