#include "gannet/io/safetensors_stream_writer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "gannet/core/atomic_file.h"
#include "gannet/io/safetensors.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
using namespace gannet::io;
namespace fs = std::filesystem;

namespace {

class SafetensorsStreamWriterTest : public TempDirTest {
 protected:
  // The names of the files in the test's directory.
  std::vector<std::string> files() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    return names;
  }
};

Tensor counting(const Shape& shape) {
  Tensor t = Tensor::empty(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = 0.5f * (float)i - 3.0f;
  return t;
}

}  // namespace

TEST_F(SafetensorsStreamWriterTest, RowBlocksReadBackAsOneTensor) {
  const Tensor all = counting({10, 3});
  const std::map<std::string, std::string> meta = {{"source", "generated"}, {"note", "ünïcode"}};
  SafetensorsStreamWriter w(file("f.safetensors"), "features", DType::f32, {10, 3}, meta);
  w.append(all.slice(0, 4));
  w.append(all.slice(4, 4));  // no rows
  w.append(all.slice(4, 10).raw(), 6);
  EXPECT_EQ(w.rows_written(), 10);
  w.finish();
  const SafeTensors st = SafeTensors::open(file("f.safetensors"));
  EXPECT_EQ(st.metadata(), meta);
  const Tensor back = st.get("features", DType::f32, {10, 3});
  EXPECT_EQ(std::memcmp(back.raw(), all.raw(), all.nbytes()), 0);
  EXPECT_EQ(files(), std::vector<std::string>{"f.safetensors"});
}

TEST_F(SafetensorsStreamWriterTest, BytesEqualSaveSafetensors) {
  // Same tensor, same metadata: the streamed file is byte for byte the one save_safetensors writes
  // (header, its padding to 8 bytes, data), for shapes whose headers need different paddings.
  for (const Shape& shape : {Shape{7}, Shape{3, 5}, Shape{2, 3, 4}, Shape{0, 9}}) {
    Tensor t = Tensor::empty(shape, DType::i32);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<int32_t>()[i] = (int32_t)(i * 7919 % 1000 - 500);
    save_safetensors(file("a.safetensors"), {{"x", t}}, {{"k", "v"}});
    SafetensorsStreamWriter w(file("b.safetensors"), "x", DType::i32, shape, {{"k", "v"}});
    for (int64_t r = 0; r < shape[0]; ++r) w.append(t.slice(r, r + 1));
    w.finish();
    EXPECT_EQ(read_file(file("a.safetensors")), read_file(file("b.safetensors"))) << shape_str(shape);
  }
}

TEST_F(SafetensorsStreamWriterTest, TooFewRowsAtFinishLeaveNoFile) {
  write(file("f.safetensors"), "old");
  SafetensorsStreamWriter w(file("f.safetensors"), "features", DType::f32, {10, 3});
  w.append(counting({5, 3}));
  EXPECT_TRUE(has(message_of([&] { w.finish(); }), "f.safetensors: tensor 'features': 5 of its 10 rows were written"));
  EXPECT_EQ(read_file(file("f.safetensors")), "old");  // the previous file is untouched
  EXPECT_EQ(files(), std::vector<std::string>{"f.safetensors"});
  EXPECT_TRUE(has(message_of([&] { w.append(counting({1, 3})); }), "already finished or abandoned"));
}

TEST_F(SafetensorsStreamWriterTest, TooManyRowsAreAnError) {
  SafetensorsStreamWriter w(file("f.safetensors"), "features", DType::f32, {4, 3});
  w.append(counting({3, 3}));
  EXPECT_TRUE(has(message_of([&] { w.append(counting({2, 3})); }), "2 more rows after 3 exceed its 4"));
  EXPECT_TRUE(files().empty());
}

TEST_F(SafetensorsStreamWriterTest, RowsOfAnotherShapeOrDtypeAreAnError) {
  SafetensorsStreamWriter w(file("f.safetensors"), "features", DType::f32, {4, 3});
  EXPECT_TRUE(has(message_of([&] { w.append(counting({2, 4})); }), "rows of f32[2, 3] expected, got f32[2, 4]"));
  SafetensorsStreamWriter v(file("g.safetensors"), "features", DType::f32, {4, 3});
  EXPECT_TRUE(has(message_of([&] { v.append(Tensor::zeros({2, 3}, DType::i32)); }), "got i32[2, 3]"));
  EXPECT_TRUE(files().empty());
}

TEST_F(SafetensorsStreamWriterTest, AbandonedWriterRemovesItsTemporary) {
  {
    SafetensorsStreamWriter w(file("f.safetensors"), "features", DType::f32, {4, 3});
    w.append(counting({2, 3}));
    EXPECT_EQ(files(), std::vector<std::string>{"f.safetensors" + temporary_path("")});
  }
  EXPECT_TRUE(files().empty());
}

TEST_F(SafetensorsStreamWriterTest, BadTensorsAreRefusedUpFront) {
  EXPECT_TRUE(has(message_of([&] { SafetensorsStreamWriter(file("f"), "x", DType::f32, {}); }), "at least one dimension"));
  EXPECT_TRUE(has(message_of([&] { SafetensorsStreamWriter(file("f"), "__metadata__", DType::f32, {2}); }),
                  "not a valid tensor name"));
  EXPECT_TRUE(has(message_of([&] { SafetensorsStreamWriter(file("f"), "x", DType::f32, {2, -1}); }), "negative"));
  EXPECT_TRUE(has(message_of([&] { SafetensorsStreamWriter(file("no/such/dir/f"), "x", DType::f32, {2}); }),
                  "cannot write"));
  EXPECT_TRUE(files().empty());
}
