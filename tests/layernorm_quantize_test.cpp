#include "gannet/kernels/layernorm_quantize.h"

#include <vector>

#include "gannet/kernels/layernorm.h"
#include "gannet/kernels/quantize_rows.h"
#include "gannet/kernels/quantize_rows_int4.h"
#include "kernel_test_util.h"

using namespace gannet;
using namespace gannet::testing;
namespace k = gannet::kernels;

TEST(LayerNormQuantize, EqualsLayerNormThenQuantizeBitwise) {
  for (int64_t C : {24, 100, 768})
    for (int64_t M : {1, 3, 129})
      for (float static_scale : {0.f, 0.02f}) {
        const auto x = random_vec(M * C, 1 + M + C, 2.f);
        const auto g = random_vec(C, 2), b = random_vec(C, 3);
        std::vector<float> y(M * C), s_want(M), s_got(M);
        const int64_t ld = C + 8;  // a padded row stride: the padding is left alone
        std::vector<int8_t> q_want(M * ld, 5), q_got(M * ld, 5);
        k::layernorm_forward(x.data(), g.data(), b.data(), y.data(), nullptr, nullptr, M, C, 1e-5f);
        k::quantize_rows(y.data(), C, M, C, static_scale, q_want.data(), ld, s_want.data());
        k::layernorm_quantize_rows(x.data(), g.data(), b.data(), M, C, 1e-5f, static_scale, q_got.data(), ld,
                                   s_got.data());
        ASSERT_EQ(q_got, q_want) << "C " << C << " M " << M << " static " << static_scale;
        ASSERT_EQ(s_got, s_want);
      }
}

TEST(LayerNormQuantize, Int4EqualsLayerNormThenQuantizeRowsInt4Bitwise) {
  for (int64_t C : {24, 100, 768})
    for (int64_t M : {1, 3, 129})
      for (int mode = 0; mode < 3; ++mode) {  // symmetric dynamic, symmetric static, asymmetric
        const bool asym = mode == 2;
        const float static_scale = mode == 1 ? 0.3f : 0.f;
        const auto x = random_vec(M * C, 1 + M + C, 2.f);
        const auto g = random_vec(C, 2), b = random_vec(C, 3);
        const int64_t Kp = (C + 63) / 64 * 64, ld = Kp / 2 + 4;  // padding columns, and a wider stride
        std::vector<float> y(M * C), s_want(M), s_got(M);
        std::vector<uint8_t> q_want(M * ld, 5), q_got(M * ld, 5), z_want(M, 9), z_got(M, 9);
        k::layernorm_forward(x.data(), g.data(), b.data(), y.data(), nullptr, nullptr, M, C, 1e-5f);
        k::quantize_rows_int4(y.data(), C, M, C, Kp, asym, static_scale, q_want.data(), ld, s_want.data(),
                              z_want.data());
        k::layernorm_quantize_rows_int4(x.data(), g.data(), b.data(), M, C, 1e-5f, Kp, asym, static_scale,
                                        q_got.data(), ld, s_got.data(), z_got.data());
        ASSERT_EQ(q_got, q_want) << "C " << C << " M " << M << " mode " << mode;
        ASSERT_EQ(s_got, s_want);
        if (asym) {
          ASSERT_EQ(z_got, z_want);
        }
      }
}
