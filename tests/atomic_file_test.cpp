#include "gannet/core/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "gannet/core/error.h"
#include "gannet/core/mapped_file.h"
#include "test_files.h"

using namespace gannet;
using gannet::testing::message_of;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::path(::testing::TempDir()) /
            str("gannet_atomic_", ::getpid(), "_", info->test_suite_name(), "_", info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  fs::path path_;
};

}  // namespace

TEST(AtomicFile, WritesAndReplaces) {
  TempDir dir;
  std::string p = dir.file("a.txt");
  write_file_atomic(p, std::string("hello"));
  EXPECT_EQ(read_file(p), "hello");
  write_file_atomic(p, [](std::ostream& os) { os << "world " << 42; });
  EXPECT_EQ(read_file(p), "world 42");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"a.txt"});
}

TEST(AtomicFile, BinaryAndLargeWrites) {
  TempDir dir;
  std::string p = dir.file("big.bin");
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = (char)(i * 131 + (i >> 9));
  write_file_atomic(p, [&](std::ostream& os) {
    os.write(big.data(), 100);                         // small, buffered
    for (size_t i = 100; i < 5000; ++i) os.put(big[i]);  // one byte at a time
    os.write(big.data() + 5000, (std::streamsize)big.size() - 5000);  // one large block
  });
  EXPECT_EQ(read_file(p), big);
  write_file_atomic(p, std::string());  // empty file
  EXPECT_EQ(read_file(p), "");
}

TEST(AtomicFile, WriterThrowsLeavesOldFileIntact) {
  TempDir dir;
  std::string p = dir.file("keep.txt");
  write_file_atomic(p, std::string("old contents"));
  std::string msg = message_of([&] {
    write_file_atomic(p, [](std::ostream& os) {
      os << std::string(200000, 'x');  // more than one buffer's worth reaches the temporary
      throw std::runtime_error("boom");
    });
  });
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("boom"), std::string::npos) << msg;
  EXPECT_EQ(read_file(p), "old contents");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"keep.txt"});  // temporary removed

  // A gannet::Error from the writer is rethrown as one naming the file, too.
  msg = message_of([&] { write_file_atomic(p, [](std::ostream&) { fail("inner problem"); }); });
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("inner problem"), std::string::npos) << msg;
  EXPECT_EQ(read_file(p), "old contents");
}

TEST(AtomicFile, FailedFirstWriteCreatesNothing) {
  TempDir dir;
  std::string p = dir.file("new.txt");
  EXPECT_THROW(write_file_atomic(p, [](std::ostream& os) {
                 os << "partial";
                 throw std::runtime_error("fail");
               }),
               Error);
  EXPECT_FALSE(fs::exists(p));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(AtomicFile, MissingDirectoryNamesPath) {
  TempDir dir;
  std::string p = dir.file("no/such/dir/x.txt");
  std::string msg = message_of([&] { write_file_atomic(p, std::string("x")); });
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
}

// The id of a process that has ended (a child that exited and was reaped).
long dead_pid() {
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  return (long)child;
}

TEST(AtomicFile, StaleTemporariesOfEndedProcessesAreRemoved) {
  TempDir dir;
  const long dead = dead_pid(), live = (long)::getppid();  // not this process: its own temporary is a.json.tmp.<pid>
  ASSERT_FALSE(process_exists(dead));
  ASSERT_TRUE(process_exists(live));
  ASSERT_TRUE(process_exists(1));  // init: another user's, still alive
  const std::vector<std::string> names = {
      str("a.json.tmp.", dead), str("a.json.tmp.", live), str("b.json.tmp.", dead), "c.tmp.12x", "notes.tmp.txt"};
  for (const std::string& n : names) gannet::testing::write(dir.file(n), "partial");
  fs::create_directories(dir.file(str("d.tmp.", dead)));  // not a file: kept

  // Writing a.json removes a.json's temporary of the ended process only.
  write_file_atomic(dir.file("a.json"), std::string("{}"));
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"a.json", str("a.json.tmp.", live), str("b.json.tmp.", dead),
                                                     "c.tmp.12x", str("d.tmp.", dead), "notes.tmp.txt"}));
  // The whole directory: every temporary of an ended process.
  EXPECT_EQ(remove_stale_temporaries(dir.file("")), std::vector<std::string>{str("b.json.tmp.", dead)});
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"a.json", str("a.json.tmp.", live), "c.tmp.12x",
                                                     str("d.tmp.", dead), "notes.tmp.txt"}));
  EXPECT_TRUE(remove_stale_temporaries(dir.file("no-such-dir")).empty());
}

TEST(AtomicFile, PidAfterMarker) {
  EXPECT_EQ(pid_after("a.json.tmp.123", ".tmp."), 123);
  EXPECT_EQ(pid_after("x.tmp.1.tmp.77", ".tmp."), 77);
  EXPECT_EQ(pid_after(".fetch.9", ".fetch."), 9);
  EXPECT_EQ(pid_after("a.json.tmp.", ".tmp."), -1);
  EXPECT_EQ(pid_after("a.json.tmp.12a", ".tmp."), -1);
  EXPECT_EQ(pid_after("a.json.tmp.-5", ".tmp."), -1);
  EXPECT_EQ(pid_after("a.json.tmp.99999999999999999999", ".tmp."), -1);
  EXPECT_EQ(pid_after("a.json", ".tmp."), -1);
  EXPECT_FALSE(process_exists(0));
  EXPECT_FALSE(process_exists(-1));
}

TEST(AtomicFile, ReadMissingFile) {
  TempDir dir;
  std::string p = dir.file("missing.txt");
  EXPECT_EQ(message_of([&] { read_file(p); }), "cannot open " + p + ": No such file or directory");
}

TEST(MappedFile, MapsWholeFile) {
  TempDir dir;
  std::string p = dir.file("m.bin");
  write_file_atomic(p, std::string("abc\0def", 7));
  std::shared_ptr<MappedFile> m = MappedFile::open(p);
  ASSERT_EQ(m->size(), 7u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m->data()), 7), std::string("abc\0def", 7));
  EXPECT_EQ(m->path(), p);
  // Writing through the mapping never reaches the file.
  m->mutable_data()[0] = 'X';
  EXPECT_EQ(read_file(p)[0], 'a');
  // The mapping outlives the file's name.
  std::shared_ptr<void> owner = m;
  m.reset();
  fs::remove(p);
  EXPECT_EQ(static_cast<MappedFile*>(owner.get())->data()[1], 'b');
}

TEST(MappedFile, EmptyAndMissingFiles) {
  TempDir dir;
  std::string p = dir.file("empty.bin");
  write_file_atomic(p, std::string());
  auto m = MappedFile::open(p);
  EXPECT_EQ(m->size(), 0u);
  EXPECT_EQ(m->data(), nullptr);
  std::string missing = dir.file("missing.bin");
  EXPECT_EQ(message_of([&] { MappedFile::open(missing); }), "cannot open " + missing + ": No such file or directory");
  std::string msg = message_of([&] { MappedFile::open(dir.file("")); });  // a directory
  EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
}
