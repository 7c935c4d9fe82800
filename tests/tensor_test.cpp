#include "gannet/core/tensor.h"

#include <gtest/gtest.h>

using namespace gannet;

TEST(Tensor, ViewsShareStorage) {
  Tensor t = Tensor::zeros({4, 3});
  Tensor row = t[2];
  EXPECT_EQ(row.shape(), (Shape{3}));
  row.f32()[1] = 5.f;
  EXPECT_EQ(t.f32()[2 * 3 + 1], 5.f);
  Tensor s = t.slice(1, 3).view({6});
  EXPECT_EQ(s.f32()[3 + 1], 5.f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u);
}

TEST(Tensor, ErrorsNameShapes) {
  Tensor t = Tensor::zeros({2, 3});
  try {
    t.view({4, 2});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f32[2, 3]"), std::string::npos);
  }
  EXPECT_THROW(t.data<int32_t>(), Error);
  EXPECT_THROW(t.slice(1, 3), Error);
}

TEST(DType, HalfConversionsRoundTrip) {
  for (float f : {0.f, 1.f, -2.5f, 65504.f, 6.1035156e-05f, 5.96e-8f, 3.14159f}) {
    EXPECT_NEAR(f16_to_f32(f32_to_f16(f)), f, std::abs(f) * 1e-3f + 1e-7f) << f;
    EXPECT_NEAR(bf16_to_f32(f32_to_bf16(f)), f, std::abs(f) * 8e-3f) << f;
  }
  EXPECT_EQ(dtype_bytes(DType::i4, 5), 3u);
  EXPECT_EQ(dtype_from_name("bf16"), DType::bf16);
  EXPECT_THROW(dtype_from_name("f8"), Error);
}
