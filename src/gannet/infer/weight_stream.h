// Blocks of a file read ahead into a ring of buffers by a reader thread, in a fixed cyclic order
// (0, 1, ..., U-1, 0, 1, ...), with direct I/O: ZeRO-Inference's weight streaming, where the file
// holds the prepared weights of each unit (infer/streamed_weights.h). The consumer acquires the
// units in the same order and releases them in the order it acquired them; a released slot takes
// the next read at once, so up to `slots` units are in memory or on the way. With as many slots as
// units, each unit keeps its slot and is read only once.
//
// Why direct I/O (O_DIRECT) from a thread, and not madvise on a mapped file: it reads straight
// into our buffers, so resident memory is exactly the ring whatever the file's size, and the page
// cache does not fill with the model (a mapped file's pages count as our resident memory until
// reclaimed, and clean page-cache copies make a second pass read RAM, not the disk). One thread
// suffices: a read of a whole unit is one large sequential request the device serves at its
// bandwidth, and the thread sleeps in the kernel meanwhile.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gannet::infer {

// A unit's bytes in the file that the reader reads ahead: offset and length multiples of
// kDirectIoAlign. A unit may own more bytes after these, read on demand (read_now).
struct FileExtent {
  int64_t offset = 0, bytes = 0;
};
constexpr int64_t kDirectIoAlign = 4096;

class WeightStream {
 public:
  // fd: the file, opened with O_DIRECT (closed at destruction); `name` names it in errors. Slot
  // s is slot_bytes bytes at memory + s * slot_bytes (kDirectIoAlign-aligned, slot_bytes a
  // multiple of it and at least every unit's bytes).
  WeightStream(int fd, std::string name, std::vector<FileExtent> units, std::shared_ptr<void> memory,
               int64_t slots, int64_t slot_bytes);
  ~WeightStream();
  WeightStream(const WeightStream&) = delete;
  WeightStream& operator=(const WeightStream&) = delete;

  int64_t slots() const { return slots_; }
  int64_t slot_bytes() const { return slot_bytes_; }
  char* slot_data(int64_t s) const { return static_cast<char*>(memory_.get()) + s * slot_bytes_; }
  const std::shared_ptr<void>& memory() const { return memory_; }

  // Waits for the next unit of the cyclic order, which must be `unit`, and returns its slot.
  // Throws gannet::Error when its read failed (a truncated file, an I/O error).
  int64_t acquire(int64_t unit);
  // Gives back the slot of the oldest unit acquired and not released, which must be `unit`.
  void release(int64_t unit);
  // Reads `bytes` at file offset `file_offset` into slot `slot` at `slot_offset`, on the calling
  // thread (all three multiples of kDirectIoAlign; the slot must be acquired). Throws on failure.
  void read_now(int64_t slot, int64_t slot_offset, int64_t file_offset, int64_t bytes);
  // Counts the reader's reads into slot s: what a slot holds beyond its read-ahead bytes (read
  // with read_now) is valid while this is unchanged.
  int64_t generation(int64_t s) const;
  // Bytes read from the file so far, seconds the reader spent reading them, and seconds acquire()
  // waited for a unit (the compute the disk held up).
  int64_t bytes_read() const;
  double read_seconds() const;
  double wait_seconds() const;
  // Reads `bytes` of the file from its start (wrapping around) with direct I/O, once the ring is
  // full and the reader idle, and returns GB/s: the device's sequential read rate, measured
  // beside the stream.
  double measure_read_gbps(int64_t bytes);

 private:
  void read_loop();
  // Reads unit u into slot s; returns an error message or "".
  std::string read_unit(int64_t u, char* dst);

  int fd_;
  std::string name_;
  std::vector<FileExtent> units_;
  std::shared_ptr<void> memory_;
  int64_t slots_, slot_bytes_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int64_t loaded_ = 0, acquired_ = 0, released_ = 0, bytes_read_ = 0;
  double read_seconds_ = 0, wait_seconds_ = 0;
  bool stop_ = false;
  std::string error_;
  std::vector<int64_t> slot_unit_;        // the unit each slot holds (-1: none)
  std::vector<int64_t> slot_generation_;  // reads into each slot
  std::thread reader_;
};

}  // namespace gannet::infer
