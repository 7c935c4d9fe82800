#include "gannet/infer/streamed_weights.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "gannet/core/error.h"
#include "gannet/core/huge_pages.h"

namespace gannet::infer {

namespace {
int64_t round_up(int64_t n, int64_t a) { return (n + a - 1) / a * a; }

// An unnamed file in dir (it disappears with the process), opened for direct I/O, on a disk.
int open_image(const std::string& dir) {
  const int fd = open(dir.c_str(), O_TMPFILE | O_RDWR, 0600);
  GANNET_CHECK(fd >= 0, "--offload-dir ", dir, ": cannot create the streamed weights' file there: ",
               std::strerror(errno));
  struct statfs fs {};
  const bool tmpfs = fstatfs(fd, &fs) == 0 && fs.f_type == TMPFS_MAGIC;
  if (tmpfs || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_DIRECT) != 0) {
    close(fd);
    fail(str("--offload-dir ", dir, ": ", tmpfs ? "is in memory (tmpfs)" : "its file system does not take direct I/O",
             "; streaming needs a directory on disk"));
  }
  return fd;
}

void write_exactly(int fd, const char* src, int64_t bytes, int64_t offset) {
  for (int64_t done = 0; done < bytes;) {
    const ssize_t n = pwrite(fd, src + done, (size_t)(bytes - done), (off_t)(offset + done));
    if (n < 0 && errno == EINTR) continue;
    GANNET_CHECK(n > 0, "writing the streamed weights failed: ", n < 0 ? std::strerror(errno) : "nothing written");
    done += n;
  }
}

double mib(int64_t bytes) { return bytes / 1048576.0; }
}  // namespace

StreamedWeights::StreamedWeights(const io::GptWeights& w, const EngineWeightBuilder& b, const StreamOptions& o) {
  const int64_t L = b.layers(), U = L + 1;  // unit 0: the head; unit l + 1: block l
  std::vector<int64_t> unit_bytes(U);
  unit_bytes[0] = round_up((int64_t)b.head_bytes(), kDirectIoAlign);
  for (int64_t l = 0; l < L; ++l) unit_bytes[l + 1] = round_up((int64_t)b.layer_bytes(l), kDirectIoAlign);
  const int64_t largest = *std::max_element(unit_bytes.begin(), unit_bytes.end());
  const int64_t slots = std::min(U, o.max_resident_bytes / largest);
  GANNET_CHECK(slots >= 2, "--max-resident-mb ", mib(o.max_resident_bytes), " holds fewer than two units of the ",
               "streamed weights (the largest, ", largest == unit_bytes[0] ? "the embedding and LM head" : "a block",
               ", takes ", mib(largest), " MiB): give at least ", std::ceil(mib(2 * largest)));
  std::shared_ptr<void> ring = allocate_huge_pages((size_t)(slots * largest), "the streamed weights' buffers");
  const int fd = open_image(o.dir);
  heads_.resize(slots);
  layers_.assign(slots, std::vector<Layer>(L));
  std::vector<FileExtent> extents;
  try {
    // Unit u prepared in the ring's first slot (memory within the budget), written, and relocated
    // into every slot.
    auto prepare = [&](int64_t u, auto build, auto keep) {
      const int64_t bytes = unit_bytes[u], offset = extents.empty() ? 0 : extents.back().offset + extents.back().bytes;
      WeightArena arena(ring, (size_t)bytes);
      auto unit = build(arena);
      std::memset(arena.base() + arena.used(), 0, (size_t)bytes - arena.used());
      write_exactly(fd, arena.base(), bytes, offset);
      unit_offset_.push_back(offset);
      extents.push_back({offset, bytes});  // an MoE block's read-ahead part is set below
      for (int64_t s = 0; s < slots; ++s)
        keep(s, unit, relocation(arena.base(), (size_t)bytes, static_cast<char*>(ring.get()) + s * largest, ring));
    };
    prepare(0, [&](WeightArena& a) { return b.head(a); },
            [&](int64_t s, const HeadWeights& h, const Relocation& m) { heads_[s] = relocated(h, m); });
    release_source_pages(w, "wte.weight", true);
    release_source_pages(w, "lm_head.weight", true);
    for (int64_t l = 0; l < L; ++l) {
      prepare(l + 1, [&](WeightArena& a) { return b.layer(l, a); },
              [&](int64_t s, const Layer& y, const Relocation& m) { layers_[s][l] = relocated(y, m); });
      if (layers_[0][l].experts > 0) extents.back().bytes = layers_[0][l].experts_offset;  // experts on demand
      release_source_pages(w, "h." + std::to_string(l) + ".", false);
    }
    GANNET_CHECK(fdatasync(fd) == 0, "writing the streamed weights failed: ", std::strerror(errno));
  } catch (...) {
    close(fd);
    throw;
  }
  for (const FileExtent& e : extents) bytes_per_pass_ += e.bytes;
  for (int64_t b : unit_bytes) file_bytes_ += b;
  loaded_.resize(slots);
  loaded_unit_.assign(slots, -1);
  loaded_generation_.assign(slots, -1);
  if (slots == U) bytes_per_pass_ = 0;  // every unit keeps its slot: read once
  stream_ = std::make_unique<WeightStream>(fd, "--offload-dir " + o.dir + " weights", std::move(extents), ring,
                                           slots, largest);
}

const HeadWeights& StreamedWeights::head() {
  if (head_slot_ < 0) head_slot_ = stream_->acquire(0);
  return heads_[head_slot_];
}

void StreamedWeights::release_head() {
  stream_->release(0);
  head_slot_ = -1;
}

const Layer& StreamedWeights::layer(int64_t l) {
  layer_slot_ = stream_->acquire(l + 1);
  return layers_[layer_slot_][l];
}

void StreamedWeights::load_experts(int64_t l, const std::vector<int64_t>& experts) {
  const int64_t s = layer_slot_, u = l + 1, generation = stream_->generation(s);
  const Layer& y = layers_[s][l];
  if (loaded_unit_[s] != u || loaded_generation_[s] != generation) {
    loaded_[s].assign(y.experts, 0);
    loaded_unit_[s] = u;
    loaded_generation_[s] = generation;
  }
  // Runs of consecutive experts missing from the slot, each read at once.
  std::vector<char>& have = loaded_[s];
  for (size_t i = 0; i < experts.size();) {
    const int64_t first = experts[i];
    int64_t last = first;
    while (i < experts.size() && experts[i] == last && !have[last]) ++i, ++last;
    if (last == first) {
      ++i;
      continue;
    }
    const int64_t at = y.experts_offset + first * y.expert_stride, bytes = (last - first) * y.expert_stride;
    stream_->read_now(s, at, unit_offset_[u] + at, bytes);
    std::fill(have.begin() + first, have.begin() + last, 1);
  }
}

void StreamedWeights::release_layer(int64_t l) { stream_->release(l + 1); }

}  // namespace gannet::infer
