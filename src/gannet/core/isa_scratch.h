// A growable scratch buffer for the vector-ISA translation units (*_simd.cpp).
//
// Those files are compiled with -mavx512f (or -mavx2), and every out-of-line template member they
// instantiate (std::vector<float>::_M_default_append, say) is a weak symbol of which the linker keeps
// one copy for the whole program: the AVX-512 one may then run from scalar code on a CPU without
// AVX-512 (seen on Zen 3 as SIGILL in the ASan build). This buffer lives in an unnamed namespace, so
// each translation unit keeps its own instantiation, and it calls only C's allocator.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <new>

namespace gannet {
namespace {

template <class T>
class IsaScratch {
 public:
  IsaScratch() = default;
  IsaScratch(const IsaScratch&) = delete;
  IsaScratch& operator=(const IsaScratch&) = delete;
  ~IsaScratch() { std::free(data_); }

  // At least n elements, 64-byte aligned; the contents are not kept when it grows.
  T* reserve(int64_t n) {
    if (n > size_) {
      std::free(data_);
      const size_t bytes = ((size_t)n * sizeof(T) + 63) / 64 * 64;
      data_ = static_cast<T*>(std::aligned_alloc(64, bytes));
      size_ = data_ ? n : 0;
      if (!data_) throw std::bad_alloc();
    }
    return data_;
  }

 private:
  T* data_ = nullptr;
  int64_t size_ = 0;
};

}  // namespace
}  // namespace gannet
