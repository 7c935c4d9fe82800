// Fashion-MNIST (issue 21): the gzip IDX reader on small files the test writes, corrupt variants
// as one-line errors, the prepared files and idempotency, and the real Debian files when installed.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "gannet/core/atomic_file.h"
#include "gannet/data/fashion_mnist.h"
#include "gannet/io/safetensors.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::data;
using gannet::testing::has;
using gannet::testing::message_of;
using gannet::testing::write;
namespace fs = std::filesystem;

namespace {

IdxArray images(int n, int h, int w) {
  IdxArray a{{n, h, w}, {}};
  for (int i = 0; i < n * h * w; ++i) a.data.push_back((uint8_t)(i * 7));
  return a;
}

IdxArray labels(std::vector<uint8_t> v) { return IdxArray{{(int64_t)v.size()}, v}; }

class FashionFiles : public gannet::testing::TempDirTest {
 protected:
  // A tiny Fashion-MNIST: 5 train and 3 test images of 4x3.
  FashionMnistOptions write_source() {
    fs::create_directories(file("src"));
    write_idx_gz(file("src/train-images-idx3-ubyte.gz"), images(5, 4, 3));
    write_idx_gz(file("src/train-labels-idx1-ubyte.gz"), labels({9, 0, 0, 3, 8}));
    write_idx_gz(file("src/t10k-images-idx3-ubyte.gz"), images(3, 4, 3));
    write_idx_gz(file("src/t10k-labels-idx1-ubyte.gz"), labels({1, 2, 9}));
    FashionMnistOptions o;
    o.source_dir = file("src");
    o.out_dir = file("out");
    return o;
  }
};

}  // namespace

TEST_F(FashionFiles, IdxRoundTripsThroughGzip) {
  const IdxArray a = images(2, 4, 3);
  write_idx_gz(file("a.gz"), a);
  const std::string raw = read_file(file("a.gz"));
  EXPECT_EQ((uint8_t)raw[0], 0x1f);  // gzip magic: the file is compressed
  const IdxArray b = read_idx_gz(file("a.gz"));
  EXPECT_EQ(b.dims, a.dims);
  EXPECT_EQ(b.data, a.data);
}

TEST_F(FashionFiles, CorruptFilesAreOneLineErrorsNamingTheFile) {
  write_idx_gz(file("a.gz"), images(20, 28, 28));
  const std::string gz = read_file(file("a.gz"));
  write(file("cut.gz"), gz.substr(0, gz.size() / 2));
  EXPECT_TRUE(has(message_of([&] { read_idx_gz(file("cut.gz")); }), "cut.gz: corrupt gzip data (truncated"));
  std::string flipped = gz;
  flipped[gz.size() / 2] ^= 0x55;
  write(file("flip.gz"), flipped);
  EXPECT_TRUE(has(message_of([&] { read_idx_gz(file("flip.gz")); }), "flip.gz: corrupt gzip data"));

  IdxArray short_data = images(2, 4, 3);
  short_data.dims[0] = 3;  // the header promises a third image
  write_idx_gz(file("short.gz"), short_data);
  EXPECT_TRUE(has(message_of([&] { read_idx_gz(file("short.gz")); }),
                  "short.gz: IDX header promises 36 bytes of data, the file has 24"));
  write(file("magic.idx"), std::string("\x01\x00\x08\x01\x00\x00\x00\x01\x05", 9));
  EXPECT_TRUE(has(message_of([&] { read_idx_gz(file("magic.idx")); }), "not an IDX file"));
  write(file("type.idx"), std::string("\x00\x00\x0d\x01\x00\x00\x00\x01\x05", 9));
  EXPECT_TRUE(has(message_of([&] { read_idx_gz(file("type.idx")); }), "IDX type 0xd is not 0x08"));
  EXPECT_TRUE(has(message_of([&] { read_idx_gz(file("missing.gz")); }), "missing.gz: no such file"));
}

TEST_F(FashionFiles, SplitsCheckLabelsAgainstImages) {
  write_idx_gz(file("i.gz"), images(3, 4, 3));
  write_idx_gz(file("l.gz"), labels({1, 2}));
  EXPECT_TRUE(has(message_of([&] { read_idx_split(file("i.gz"), file("l.gz"), 10); }), "2 labels for the 3 images"));
  write_idx_gz(file("l.gz"), labels({1, 2, 10}));
  EXPECT_TRUE(has(message_of([&] { read_idx_split(file("i.gz"), file("l.gz"), 10); }),
                  "label 10 of item 2 is not one of the 10 classes"));
  write_idx_gz(file("l.gz"), labels({1, 2, 3}));
  EXPECT_TRUE(has(message_of([&] { read_idx_split(file("l.gz"), file("l.gz"), 10); }), "1 dimensions, not 3"));
}

TEST_F(FashionFiles, PrepareWritesImagesAndClassNamesAndASecondRunRewritesNothing) {
  const FashionMnistOptions o = write_source();
  const PreparedData first = prepare_fashion_mnist(o);
  EXPECT_FALSE(first.up_to_date);
  EXPECT_EQ(first.summary["splits"]["train"]["images"], 5);
  EXPECT_EQ(first.summary["splits"]["train"]["per_class"]["T-shirt/top"], 2);
  EXPECT_EQ(first.summary["splits"]["test"]["examples"][2]["text"], "Ankle boot");

  const io::SafeTensors train = io::SafeTensors::open(file("out/train.safetensors"));
  const Tensor img = train.get("images", DType::u8, {5, 4, 3});
  EXPECT_EQ(img.data<uint8_t>()[13], (uint8_t)(13 * 7));
  EXPECT_EQ(train.get("label", DType::i32, {5}).data<int32_t>()[4], 8);
  EXPECT_TRUE(has(train.metadata().at("classes"), "\"Ankle boot\""));
  EXPECT_EQ(read_file(file("out/classes.txt")).substr(0, 20), "T-shirt/top\nTrouser\n");

  std::map<std::string, fs::file_time_type> times;
  for (const auto& f : fs::directory_iterator(file("out"))) times[f.path().string()] = f.last_write_time();
  const PreparedData second = prepare_fashion_mnist(o);
  EXPECT_TRUE(second.up_to_date);
  EXPECT_EQ(second.summary, first.summary);
  for (const auto& f : fs::directory_iterator(file("out"))) EXPECT_EQ(times.at(f.path().string()), f.last_write_time());

  fs::remove(file("out/test.safetensors"));  // a lost output is rebuilt
  EXPECT_FALSE(prepare_fashion_mnist(o).up_to_date);
  EXPECT_TRUE(fs::exists(file("out/test.safetensors")));
}

TEST_F(FashionFiles, AMissingSourceFileIsNamedBeforeAnythingIsWritten) {
  const FashionMnistOptions o = write_source();
  fs::remove(file("src/t10k-labels-idx1-ubyte.gz"));
  EXPECT_TRUE(has(message_of([&] { prepare_fashion_mnist(o); }), "t10k-labels-idx1-ubyte.gz: no such file"));
  EXPECT_FALSE(fs::exists(file("out")));
}

TEST(FashionMnist, RealDebianFilesHaveTheKnownCounts) {
  const FashionMnistOptions o;
  const fs::path dir(o.source_dir);
  if (!fs::exists(dir / "train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << o.source_dir << " is absent (Debian package dataset-fashion-mnist: scripts/setup.sh)";
  const LabelledImages test =
      read_idx_split((dir / "t10k-images-idx3-ubyte.gz").string(), (dir / "t10k-labels-idx1-ubyte.gz").string(), 10);
  EXPECT_EQ(test.images.shape(), (Shape{10000, 28, 28}));
  std::vector<int> per_class(10, 0);
  for (int32_t y : test.labels) ++per_class[y];
  for (int c = 0; c < 10; ++c) EXPECT_EQ(per_class[c], 1000) << fashion_mnist_classes()[c];
  EXPECT_EQ(read_idx_gz((dir / "train-labels-idx1-ubyte.gz").string()).dims, (std::vector<int64_t>{60000}));
}
