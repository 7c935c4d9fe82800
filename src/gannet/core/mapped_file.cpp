#include "gannet/core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gannet/core/error.h"
#include "gannet/core/regular_file.h"

namespace gannet {

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  struct stat st;
  int fd = open_regular_file(path, st);
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = path;
  m->size_ = (size_t)st.st_size;
  if (m->size_ > 0) {
    // Private and writable: pages are shared with the page cache until written, and a write
    // never reaches the file (which was opened read-only). No reservation: the kernel would
    // otherwise count the whole file as memory this process might write, and refuse files larger
    // than memory (a generated graph's 25.6 GB of features on a 24 GB machine).
    void* p = ::mmap(nullptr, m->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      m->size_ = 0;
      fail(str("cannot map ", path, ": ", std::strerror(err)));
    }
    m->data_ = static_cast<uint8_t*>(p);
  }
  ::close(fd);  // the mapping stays valid without the descriptor
  return m;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
}

}  // namespace gannet
