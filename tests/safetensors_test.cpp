#include "gannet/io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "gannet/core/atomic_file.h"
#include "test_files.h"

using namespace gannet;
using namespace gannet::testing;
using namespace gannet::io;
namespace fs = std::filesystem;

namespace {

class SafeTensorsTest : public TempDirTest {};

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = (char)((n >> (8 * i)) & 0xff);
  return s;
}

// A safetensors file as the spec describes it: length, header, data.
std::string st_bytes(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

std::string raw_bytes(const void* p, size_t n) { return std::string(static_cast<const char*>(p), n); }

template <class T>
Tensor make(const Shape& shape, DType dt, int seed) {
  Tensor t = Tensor::empty(shape, dt);
  T* p = static_cast<T*>(t.raw());
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = (T)((i * 37 + seed) % 101 - 50);
  return t;
}

}  // namespace

TEST_F(SafeTensorsTest, RoundTripAllDtypesAndMetadata) {
  Tensor bf = Tensor::empty({3, 2}, DType::bf16);
  Tensor hf = Tensor::empty({5}, DType::f16);
  for (int i = 0; i < 6; ++i) static_cast<uint16_t*>(bf.raw())[i] = f32_to_bf16(0.5f * i - 1.f);
  for (int i = 0; i < 5; ++i) static_cast<uint16_t*>(hf.raw())[i] = f32_to_f16(0.25f * i + 3.f);
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"z.f32", make<float>({2, 3, 4}, DType::f32, 1)},
      {"bf16", bf},
      {"f16", hf},
      {"a.i8", make<int8_t>({7}, DType::i8, 2)},  // odd sizes: later tensors are unaligned
      {"u8", make<uint8_t>({3, 3}, DType::u8, 3)},
      {"i32", make<int32_t>({4}, DType::i32, 4)},
      {"i64", make<int64_t>({2, 2}, DType::i64, 5)},
      {"scalar", Tensor::from_vector({3.5f}, {})},
      {"empty", Tensor::zeros({0, 3})},
  };
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"config", "{\"n_layer\": 2}"}, {"ünïcode", "✓"}};
  std::string p = file("all.safetensors");
  save_safetensors(p, tensors, meta);

  SafeTensors st = SafeTensors::open(p);
  EXPECT_EQ(st.path(), p);
  EXPECT_EQ(st.metadata(), meta);
  std::vector<std::string> names;
  for (auto& [n, t] : tensors) names.push_back(n);
  EXPECT_EQ(st.names(), names);  // the order they were saved in
  for (auto& [n, t] : tensors) {
    SCOPED_TRACE(n);
    ASSERT_TRUE(st.has(n));
    Tensor r = st.get(n);
    EXPECT_EQ(r.dtype(), t.dtype());
    EXPECT_EQ(r.shape(), t.shape());
    EXPECT_EQ(raw_bytes(r.raw(), r.nbytes()), raw_bytes(t.raw(), t.nbytes()));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(r.raw()) % std::max(1, dtype_bits(r.dtype()) / 8), 0u);
    Tensor r2 = st.get(n, t.dtype(), t.shape());
    EXPECT_EQ(r2.shape(), t.shape());
  }
  EXPECT_FALSE(st.has("missing"));
  EXPECT_FALSE(st.has("__metadata__"));
}

TEST_F(SafeTensorsTest, ZeroCopyOutlivesReader) {
  std::string p = file("zc.safetensors");
  save_safetensors(p, {{"w", Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3})}});
  Tensor w;
  {
    SafeTensors st = SafeTensors::open(p);
    w = st.get("w");
    EXPECT_EQ(st.get("w").raw(), w.raw());  // both views of the same mapped bytes
  }
  fs::remove(p);  // the mapping keeps the data alive
  EXPECT_EQ(w.f32()[5], 6.f);
  w.f32()[0] = 9.f;  // copy-on-write: allowed, never reaches a file
  EXPECT_EQ(w.f32()[0], 9.f);
}

TEST_F(SafeTensorsTest, ByteExactTinyFile) {
  std::string p = file("tiny.safetensors");
  Tensor a = Tensor::from_vector({1.f, -2.f}, {2});
  Tensor b = Tensor::empty({3}, DType::u8);
  for (int i = 0; i < 3; ++i) static_cast<uint8_t*>(b.raw())[i] = (uint8_t)(i + 1);
  save_safetensors(p, {{"a", a}, {"b", b}}, {{"format", "pt"}});

  std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}})";
  ASSERT_EQ(header.size(), 138u);
  header += "      ";  // 8 + 144 = 152: data starts 8-byte aligned
  std::string data("\x00\x00\x80\x3f"   // 1.0f
                   "\x00\x00\x00\xc0"   // -2.0f
                   "\x01\x02\x03",
                   11);
  std::string expected = std::string("\x90\0\0\0\0\0\0\0", 8) + header + data;
  EXPECT_EQ(read_file(p), expected);

  // Without metadata there is no __metadata__ entry.
  save_safetensors(p, {{"b", b}});
  std::string h2 = R"({"b":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}})";
  h2.append((8 - (8 + h2.size()) % 8) % 8, ' ');
  EXPECT_EQ(read_file(p), st_bytes(h2, "\x01\x02\x03"));
}

TEST_F(SafeTensorsTest, ReadsHandBuiltFiles) {
  // As another writer might produce: spaces, keys in another order, __metadata__ last, an
  // unpadded header (so the data is unaligned), a tensor gannet has no dtype for.
  std::string header = R"({ "w" : { "shape" : [2, 2], "data_offsets" : [8, 24], "dtype" : "F32" },
    "d": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]},
    "__metadata__": {"format": "pt"} })";
  float w[4] = {0.5f, 1.5f, -2.5f, 4.f};
  double d = 7.0;
  std::string data = raw_bytes(&d, 8) + raw_bytes(w, 16);
  if ((8 + header.size()) % 4 == 0) header += " ";  // make sure the copy path is exercised
  std::string p = file("hand.safetensors");
  write_file_atomic(p, st_bytes(header, data));

  SafeTensors st = SafeTensors::open(p);
  EXPECT_EQ(st.names(), (std::vector<std::string>{"d", "w"}));
  EXPECT_EQ(st.metadata().at("format"), "pt");
  Tensor t = st.get("w", DType::f32, {2, 2});
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 4, 0u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(t.f32()[i], w[i]);
  std::string msg = message_of([&] { st.get("d"); });
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("F64"), std::string::npos) << msg;
}

TEST_F(SafeTensorsTest, GetErrorsNameFileTensorAndShapes) {
  std::string p = file("g.safetensors");
  save_safetensors(p, {{"w", Tensor::zeros({2, 3})}});
  SafeTensors st = SafeTensors::open(p);
  std::string msg = message_of([&] { st.get("nope"); });
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("'nope'"), std::string::npos) << msg;
  msg = message_of([&] { st.get("w", DType::f32, {3, 2}); });
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected f32[3, 2], got f32[2, 3]"), std::string::npos) << msg;
  msg = message_of([&] { st.get("w", DType::bf16, {2, 3}); });
  EXPECT_NE(msg.find("expected bf16[2, 3], got f32[2, 3]"), std::string::npos) << msg;
  msg = message_of([&] { st.get("nope", DType::f32, {1}); });
  EXPECT_NE(msg.find("'nope'"), std::string::npos) << msg;
}

TEST_F(SafeTensorsTest, CorruptFilesNameTheFile) {
  const std::string good = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string data8(8, '\0');
  struct Case {
    const char* what;
    std::string bytes;
    const char* expect;  // a piece of the message
  };
  std::vector<Case> cases = {
      {"empty", "", "shorter than the 8-byte"},
      {"short", "\x05\0\0\0\0", "shorter than the 8-byte"},
      {"header too long", le64(1000) + "{}", "header length 1000 exceeds"},
      {"huge header length", le64(~0ull) + "{}", "exceeds"},
      {"bad json", st_bytes("{\"w\": {", ""), "not valid JSON"},
      {"json not object", st_bytes("[1, 2]", ""), "not an object"},
      {"entry not object", st_bytes(R"({"w": 3})", ""), "tensor 'w'"},
      {"no dtype", st_bytes(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", data8), "missing 'dtype'"},
      {"no shape", st_bytes(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", data8), "missing 'shape'"},
      {"no offsets", st_bytes(R"({"w":{"dtype":"F32","shape":[2]}})", data8), "missing 'data_offsets'"},
      {"unknown dtype", st_bytes(R"({"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", data8),
       "unknown dtype 'F33'"},
      {"dtype not string", st_bytes(R"({"w":{"dtype":1,"shape":[2],"data_offsets":[0,8]}})", data8), "dtype"},
      {"negative dim", st_bytes(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data8),
       "non-negative"},
      {"shape overflow",
       st_bytes(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", data8),
       "too large"},
      {"offsets past end", st_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234"),
       "past the end"},
      {"offsets reversed", st_bytes(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", data8),
       "end before"},
      {"size mismatch", st_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8),
       "needs 12"},
      {"offsets not pair", st_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", data8),
       "data_offsets"},
      {"metadata not strings", st_bytes(R"({"__metadata__":{"n":3}})", ""), "__metadata__"},
      {"truncated", st_bytes(good, data8).substr(0, 8 + good.size() + 5), "truncated"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    std::string p = file("bad.safetensors");
    write_file_atomic(p, c.bytes);
    std::string msg = message_of([&] { SafeTensors::open(p); });
    EXPECT_EQ(msg.rfind(p + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
  }
  std::string missing = file("missing.safetensors");
  std::string msg = message_of([&] { SafeTensors::open(missing); });
  EXPECT_NE(msg.find(missing), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;
}

TEST_F(SafeTensorsTest, TruncatedRealFile) {
  std::string p = file("t.safetensors");
  save_safetensors(p, {{"a", Tensor::zeros({16})}, {"b", Tensor::zeros({16})}});
  SafeTensors::open(p);
  fs::resize_file(p, fs::file_size(p) - 1);
  std::string msg = message_of([&] { SafeTensors::open(p); });
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("'b'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST_F(SafeTensorsTest, SaveRejectsBadInputAndKeepsOldFile) {
  std::string p = file("s.safetensors");
  save_safetensors(p, {{"w", Tensor::zeros({2})}});
  std::string before = read_file(p);
  Tensor packed = Tensor::zeros({4}, DType::i4);
  std::string msg = message_of([&] { save_safetensors(p, {{"w", Tensor::zeros({3})}, {"q", packed}}); });
  EXPECT_NE(msg.find("not supported yet"), std::string::npos) << msg;
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  msg = message_of([&] { save_safetensors(p, {{"w", Tensor::zeros({3})}, {"w", Tensor::zeros({3})}}); });
  EXPECT_NE(msg.find("twice"), std::string::npos) << msg;
  EXPECT_THROW(save_safetensors(p, {{"__metadata__", Tensor::zeros({3})}}), Error);
  EXPECT_THROW(save_safetensors(p, {{"u", Tensor()}}), Error);
  EXPECT_EQ(read_file(p), before);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(SafeTensorsTest, DtypeNames) {
  EXPECT_STREQ(safetensors_dtype_name(DType::bf16), "BF16");
  EXPECT_EQ(dtype_from_safetensors_name("I64"), DType::i64);
  EXPECT_THROW(dtype_from_safetensors_name("F64"), Error);
  EXPECT_THROW(safetensors_dtype_name(DType::i4), Error);
}
